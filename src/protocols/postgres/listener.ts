// The listener of one PostgreSQL connection: accepts clients, runs the startup and
// login, then hands the session to PostgresSession. Enforces at login:
// - plaintext sessions are refused unless `allowPlaintext` (28000);
// - the password is a Gatehouse API key or gateway token, verified by the same
//   identify stage as HTTP (28P01), and asked for only after TLS, or on a listener
//   that allows plaintext;
// - the user name must match the identity (user-rule.ts, 28000);
// - the database must be the target's, or the connection's name (3D000);
// - a scoped Gatehouse token must name this connection (token_scope_denied, 42501);
// - policy decides the session itself (`sql.connect`) before the database is reached;
// - CancelRequest reaches only the backend whose key the gateway handed out, one at a
//   time per session, at most 10 a second per client address (cancel-limiter.ts).
// And while the session is open: a revocation of its identity, or the expiry of its
// credential, ends it (FATAL credential_revoked / credential_expired).
// The session is one recorded exchange (`sql.session`, its id is the session id) that
// opens at login and finishes when the client leaves; statements are recorded under it.

import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../errors/index.js';
import { checkTokenScope, provenIdentity } from '../../identity/index.js';
import { newId, type Decision, type Exchange, type ExchangeOutcome, type Identity } from '../../exchange/index.js';
import type { PipelineStages } from '../../pipeline/index.js';
import { enforceDecision } from '../../policy/index.js';
import { isStoreUnreachable } from '../../store/index.js';
import { authentication, backendKeyData, BodyReader, ProtocolViolation, readyForQuery } from './codec.js';
import { databaseAllowed, type PostgresConnection } from './connection.js';
import { checkParameterStatus } from './parameter-status.js';
import { errorResponseFor } from './errors.js';
import { FrameSource } from './frame-source.js';
import { createCancelLimiter } from './cancel-limiter.js';
import { cancelUpstream, connectUpstream, type UpstreamSession } from './forward.js';
import { shadowedBuiltins } from './function-catalog.js';
import { unnamedPathCode } from './path-code-catalog.js';
import { SessionTables, tableCatalog } from './table-catalog.js';
import { PostgresSession } from './session.js';
import { negotiateStartup, passedStartupParams, refusedStartupSetting } from './startup.js';
import { userMatchesIdentity } from './user-rule.js';

export interface PostgresListenerOptions {
  readonly connection: PostgresConnection;
  readonly stages: PipelineStages;
  /** Called when a session cannot even start (for logs). */
  readonly onSessionError?: ((error: unknown) => void) | undefined;
  /** Open sessions by identity, so a revocation ends them (src/identity in-flight registry). */
  readonly inFlight?: { register(id: string, identity: Identity, cut: (error: GatehouseError) => void): () => void } | undefined;
}

export interface PostgresListener {
  /** `host:port` it listens on. */
  readonly address: string;
  readonly port: number;
  /** Sessions currently open. */
  readonly sessions: number;
  /** Stops accepting; open sessions get `graceMs` (10 s) to finish, then are ended. */
  close(graceMs?: number): Promise<void>;
}

const utf8Encodings = /^(utf-?8|unicode|sql_ascii)$/i;

/**
 * Calls `then` once the wall clock reaches `at` (never synchronously). Timers run on a
 * monotonic clock and cap at 24.8 days: one that fires early is set again for what is
 * left. Returns what cancels it.
 */
function atWallClock(at: number, then: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    const left = at - Date.now();
    timer = setTimeout(() => (Date.now() >= at ? then() : arm()), Math.min(Math.max(left, 0) + 1, 2 ** 31 - 1));
    timer.unref();
  };
  arm();
  return () => clearTimeout(timer);
}

/** Connections still logging in at once, per listener; more are refused (too_many_connections). */
export const maxLoggingIn = 256;

export async function startPostgresListener(options: PostgresListenerOptions): Promise<PostgresListener> {
  const { connection, stages } = options;
  const backends = new Map<string, UpstreamSession>();
  // By the same key: a CancelRequest also ends a statement held for approval.
  const sessions = new Map<string, PostgresSession>();
  const sockets = new Set<Socket>();
  const cancels = createCancelLimiter();
  let loggingIn = 0;

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    socket.once('close', () => sockets.delete(socket));
    handle(socket).catch((error: unknown) => {
      options.onSessionError?.(error);
      socket.destroy();
    });
  });

  async function handle(raw: Socket): Promise<void> {
    const started = performance.now();
    const startedAt = Date.now();
    // Connections that have not logged in are bounded in time (loginTimeout) and in
    // number: past the cap a new one is refused at once, as PostgreSQL refuses past
    // max_connections, instead of each holding a socket and a buffer until its timeout.
    if (loggingIn >= maxLoggingIn) {
      raw.end(errorResponseFor(new GatehouseError('too_many_connections'), 'FATAL'));
      return;
    }
    loggingIn++;
    let loggedIn = false;
    const loginTimer = setTimeout(() => raw.destroy(), connection.loginTimeoutMs);
    const loginDone = () => {
      clearTimeout(loginTimer);
      if (!loggedIn) loggingIn--;
      loggedIn = true;
    };
    let client: Duplex = raw;
    let upstream: UpstreamSession | undefined;
    let exchange: Exchange | undefined;
    let decision: Decision | undefined;
    let key: string | undefined;
    try {
      const startup = await negotiateStartup(raw, connection.serverTls, (secure) => (client = secure));
      if (startup.kind === 'closed') {
        loginDone();
        return;
      }
      if (startup.kind === 'cancel') {
        loginDone();
        raw.end();
        // Over the rate (a flood, a guessing run): dropped before the key is even looked up.
        if (!cancels.admit(raw.remoteAddress)) return;
        const target = cancelKey(startup.processId, startup.secretKey);
        const onlyHold = sessions.get(target)?.cancelHold() ?? false;
        const backend = backends.get(target);
        if (backend && !onlyHold) await cancels.once(target, () => cancelUpstream(connection.target, backend.processId, backend.secretKey, backend.socket).catch(() => undefined));
        return;
      }
      client = startup.socket;
      const params = startup.params;
      const user = params.get('user')!;
      const database = params.get('database') || user;
      exchange = {
        id: newId('pgs', startedAt),
        sessionId: '',
        protocol: 'postgres',
        connection: connection.name,
        operation: 'sql.connect',
        startedAt,
        client: { address: raw.remoteAddress, userAgent: params.get('application_name') },
        facts: { stream: false },
      };
      exchange = { ...exchange, sessionId: exchange.id };
      if (!startup.tls && !connection.allowPlaintext) {
        // Without a certificate no client can satisfy the requirement: say so, rather than ask for sslmode=require.
        throw connection.serverTls
          ? new GatehouseError('tls_required')
          : new GatehouseError('tls_required', { message: 'This listener requires TLS but has no certificate (serverTls or gateway.tls), so it accepts no session: the gateway operator must configure one, or allowPlaintext on a trusted path.' });
      }
      // A setting asked for is passed on or refused, never dropped (startup-settings.ts).
      const refusedSetting = refusedStartupSetting(params);
      if (refusedSetting !== undefined) throw refusedSetting;
      const passed = passedStartupParams(params);
      const encoding = passed.client_encoding;
      if (encoding !== undefined && !utf8Encodings.test(encoding)) {
        throw new GatehouseError('sql_not_supported', { message: `Client encoding "${encoding}" is not supported through the gateway: use UTF8.` });
      }

      // AuthenticationCleartextPassword: the password is the caller's Gatehouse credential.
      client.write(authentication(3));
      const source = new FrameSource(client, connection.maxMessageBytes);
      const answer = await source.read();
      if (answer.type !== 'p') throw new ProtocolViolation(`expected a password response, got message type ${JSON.stringify(answer.type)}`);
      const password = new BodyReader(answer.body).cstring();
      if (password === '') throw new GatehouseError('unauthenticated', { message: 'No password was presented: the password is a Gatehouse API key (or gateway token).' });
      const identity: Identity = await stages.identify(password, raw.remoteAddress);
      exchange = { ...exchange, identity };
      if (!userMatchesIdentity(user, identity)) {
        throw new GatehouseError('user_mismatch', {
          message: `The user name "${user}" does not match the credential presented as the password (it belongs to "${identity.subject}"); connect as user "${identity.subject.slice(identity.subject.indexOf(':') + 1)}".`,
        });
      }
      if (!databaseAllowed(connection, database)) {
        throw new GatehouseError('database_not_found', { message: `Database "${database}" is not available on this connection; use "${connection.target.database}".` });
      }
      // A scoped Gatehouse token reaches only its connections (and operations), as on
      // HTTP: one issued for another connection, or an admin login session, is refused.
      checkTokenScope(exchange, { connectionOnly: true });
      decision = stages.policy.decide(exchange);
      enforceDecision(decision);

      // UTF8 unless the client asked for SQL_ASCII: left out, the database's or the role's
      // default applies (ALTER DATABASE … SET client_encoding = 'SJIS'), and inspection,
      // which reads SQL as UTF-8, would see other statements than the database runs; so
      // would it with standard_conforming_strings off (a backslash ends no literal for
      // the gateway's parser). An agent passes on only the client's list: a database
      // whose default is off is then refused below.
      const upstreamParams: Record<string, string> = { client_encoding: 'UTF8', ...passed, standard_conforming_strings: 'on' };
      upstream = await connectUpstream(connection.target, upstreamParams);
      // And what the database says it uses is checked, as later in the session.
      for (const status of upstream.parameterStatus) checkParameterStatus(status.subarray(5));
      // Before the client gets control: which built-in names the database's own functions shadow.
      const target = connection.target;
      const catalogKey = `${connection.name}\u0000${target.host}:${target.port}\u0000${target.database}\u0000${target.user}`;
      const shadowedFunctions = new Set(await shadowedBuiltins(upstream, catalogKey));
      // And which names a table may stand for (partitions, inheritance, schemas).
      // And whether code statements run unnamed may change search_path (path-code-catalog.ts).
      const tables = new SessionTables(await tableCatalog(upstream, catalogKey), catalogKey, await unnamedPathCode(upstream, catalogKey));
      await stages.recorder.open({ ...exchange, operation: 'sql.session' }, decision, { method: 'Startup', path: '', headers: { user, database }, body: undefined, truncated: false });
      exchange = { ...exchange, operation: 'sql.session' };
      loginDone();

      // AuthenticationOk, the database's ParameterStatus, our BackendKeyData, ReadyForQuery.
      // The process id is the database's own (pg_backend_pid() and every notification
      // name it: a client tells its own notifications from others' by it); the secret
      // key is ours, so only a key the gateway handed out cancels anything.
      const processId = upstream.processId;
      const secretKey = randomBytes(4).readInt32BE();
      key = cancelKey(processId, secretKey);
      backends.set(key, upstream);
      client.write(Buffer.concat([authentication(0), ...upstream.parameterStatus, backendKeyData(processId, secretKey), readyForQuery(upstream.status)]));

      const up = upstream;
      const session = new PostgresSession(
        {
          connection,
          stages,
          identity,
          sessionId: exchange.id,
          clientAddress: raw.remoteAddress,
          userAgent: params.get('application_name'),
          cancelUpstream: () => cancelUpstream(connection.target, up.processId, up.secretKey, up.socket),
          shadowedFunctions,
          tables,
        },
        client,
        source,
        upstream,
      );
      sessions.set(key, session);
      // A revocation of this identity (on any gateway sharing the store) ends the session.
      const release = options.inFlight?.register(exchange.id, identity, (error) => session.cut(error));
      // A credential that expires while the session is open ends it, as it would refuse
      // the next login (a 15-minute token must not open a session for days).
      const expiresAt = identity.expiresAt;
      const disarm = expiresAt === undefined ? undefined : atWallClock(expiresAt, () => session.cut(new GatehouseError('credential_expired', { message: 'The credential expired while this session was open, so it was ended.', detail: `expired at ${new Date(expiresAt).toISOString()}` })));
      const ended = await session.run().finally(() => {
        release?.();
        disarm?.();
      });
      const outcome: ExchangeOutcome = {
        status: ended && ended.code !== 'client_closed' ? ended.status : 200,
        complete: true,
        bytesIn: session.bytesIn,
        bytesOut: session.bytesOut,
        ttfbMs: undefined,
        durationMs: performance.now() - started,
        responseBody: JSON.stringify({ statements: session.statements }),
        errorCode: ended?.code,
        errorDetail: ended?.detail,
      };
      await stages.recorder.finish(exchange, outcome).catch(() => undefined);
      stages.observe(exchange, decision, outcome);
      client.end();
    } catch (error) {
      loginDone();
      upstream?.close();
      const failure = toLoginError(error);
      // A revoked or expired key that proved whose it is: its refusal names it (proven-identity.ts).
      const proven = provenIdentity(error);
      if (exchange && exchange.identity === undefined && proven) exchange = { ...exchange, identity: proven };
      if (failure && exchange) {
        const outcome: ExchangeOutcome = { status: failure.status, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: performance.now() - started, errorCode: failure.code, errorDetail: failure.detail };
        // A throttled login is not recorded: each would be one more event for an attacker to
        // add at will; the throttle's start is on record (auth.throttled).
        if (failure.code !== 'auth_throttled') await stages.recorder.refuse(exchange, decision, undefined, outcome).catch(() => undefined);
        stages.observe(exchange, decision, outcome);
      }
      if (failure && !client.destroyed) client.end(errorResponseFor(failure, 'FATAL'));
      else client.destroy();
    } finally {
      if (key) {
        backends.delete(key);
        sessions.delete(key);
      }
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(connection.listen.port, connection.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.address.includes(':') ? `[${address.address}]` : address.address;

  return {
    address: `${host}:${address.port}`,
    port: address.port,
    get sessions() {
      return sockets.size;
    },
    close(graceMs = 10_000) {
      return new Promise((resolve) => {
        // Open sessions get graceMs to finish, then are ended with a FATAL 57P01 (as
        // PostgreSQL's own shutdown does) and recorded as gateway_shutdown.
        const timer = setTimeout(() => {
          const shutdown = new GatehouseError('gateway_shutdown', { message: 'The gateway is shutting down; the session was ended.' });
          for (const session of sessions.values()) session.cut(shutdown);
          setImmediate(() => {
            for (const s of sockets) s.destroy();
          });
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolve();
        });
        if (sockets.size === 0) clearTimeout(timer);
      });
    },
  };
}

function cancelKey(processId: number, secretKey: number): string {
  return `${processId}:${secretKey}`;
}

/** undefined: the client went away; nothing to answer. */
function toLoginError(error: unknown): GatehouseError | undefined {
  if (error instanceof GatehouseError) return error;
  if (error instanceof ProtocolViolation) return new GatehouseError('protocol_violation', { message: `Protocol violation: ${error.message}.`, detail: error.message });
  if (error instanceof Error && error.name === 'SocketClosed') return undefined;
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  if (isStoreUnreachable(error)) return new GatehouseError('store_unavailable', { detail, cause: error });
  return new GatehouseError('internal_error', { detail });
}
