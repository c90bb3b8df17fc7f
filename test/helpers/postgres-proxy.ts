// An in-process PostgreSQL proxy for tests: a SQLite store with one API key, the real
// identify stage, the recorder, a policy (compilePolicy by default, or one a test
// builds), and a listener in front of a fresh database on the machine's PostgreSQL.

import { after, before } from 'node:test';
import pg from 'pg';
import { startApprovals, type RunningApprovals } from '../../src/approvals/start-approvals.js';
import { createRecorder, type Recorder } from '../../src/audit/index.js';
import type { ApprovalsConfig } from '../../src/config/approvals-schema.js';
import type { Decision, Exchange, ExchangeOutcome } from '../../src/exchange/index.js';
import { ApiKeyService, apiKeyAuthenticator, identifyCaller } from '../../src/identity/index.js';
import type { PipelineStages } from '../../src/pipeline/index.js';
import { compilePolicy, type DecisionPolicy } from '../../src/policy/index.js';
import { createLogger } from '../../src/observability/index.js';
import { startPostgresListener, type PostgresConnection, type PostgresListener, type PostgresListenerOptions } from '../../src/protocols/postgres/index.js';
import { openStore, type Store } from '../../src/store/index.js';
import { createTestPostgresDatabase, createTestSqliteDatabase, type TestDatabase } from './databases.js';

export interface TestProxy {
  readonly listener: PostgresListener;
  readonly port: number;
  readonly store: Store;
  readonly apiKeys: ApiKeyService;
  /** Token of an API key named `agent` in group `dba`. */
  readonly token: string;
  /** URL of the database behind the proxy (direct, for setup and checks). */
  readonly directUrl: string;
  readonly database: string;
  readonly observed: { exchange: Exchange; decision: Decision | undefined; outcome: ExchangeOutcome }[];
  /** Present when started with `approvals`. */
  readonly approvals: RunningApprovals | undefined;
  /** node-postgres config for the proxy. */
  clientConfig(extra?: pg.ClientConfig): pg.ClientConfig;
  close(): Promise<void>;
}

export type ProxyOptions = Partial<Omit<PostgresConnection, 'target' | 'name' | 'listen'>> & {
  readonly policy?: (base: DecisionPolicy) => DecisionPolicy;
  /** Wraps the store's recorder (e.g. to make some writes fail). */
  readonly recorder?: (base: Recorder) => Recorder;
  /** Approvals on the proxy's store (the `approvals:` config section, parsed); admins group: `admins`. */
  readonly approvals?: ApprovalsConfig;
  readonly inFlight?: PostgresListenerOptions['inFlight'];
  /** Reach the database through this port on 127.0.0.1 instead (a relay a test puts in between). */
  readonly upstreamPort?: number;
  /** Log in to the database as this role (the connection's credential user) instead of the URL's. */
  readonly upstreamUser?: string;
};

/** undefined plus a reason when PostgreSQL is not reachable (skip outside CI). */
export async function startTestProxy(options: ProxyOptions = {}): Promise<TestProxy | { skip: string }> {
  const created = await createTestPostgresDatabase();
  if ('skip' in created) return created;
  const url = new URL(created.url);
  const sqlite: TestDatabase = await createTestSqliteDatabase();
  const store = await openStore(sqlite.config);
  const apiKeys = new ApiKeyService(store.db);
  const { token } = await apiKeys.create({ name: 'agent', kind: 'agent', groups: ['dba'], expiresAt: null });
  const base = compilePolicy([{ connection: 'db', groups: ['dba'] }]);
  const observed: TestProxy['observed'] = [];
  const recorder = createRecorder(store.db);
  const stageRecorder = options.recorder ? options.recorder(recorder) : recorder;
  const approvals = options.approvals
    ? await startApprovals({ db: store.db, store: sqlite.config, config: options.approvals, adminGroups: ['admins'], logger: createLogger('silent') })
    : undefined;
  approvals?.setAdminUrl('https://gatehouse-admin.example');
  const stages: PipelineStages = {
    identify: identifyCaller([apiKeyAuthenticator(apiKeys)]),
    policy: options.policy ? options.policy(base) : base,
    recorder: stageRecorder,
    approvals: approvals?.stage,
    observe: (exchange, decision, outcome) => observed.push({ exchange, decision, outcome }),
  };
  const database = url.pathname.slice(1);
  const { policy: _policy, approvals: _approvals, recorder: _recorder, inFlight, upstreamPort, upstreamUser, ...rest } = options;
  const listener = await startPostgresListener({
    stages,
    inFlight,
    connection: {
      name: 'db',
      listen: { host: '127.0.0.1', port: 0 },
      serverTls: undefined,
      allowPlaintext: true,
      maxRows: undefined,
      statementTimeoutMs: undefined,
      maxMessageBytes: 1024 * 1024,
      masking: { columns: new Map() },
      loginTimeoutMs: 10_000,
      ...rest,
      target: { host: upstreamPort ? '127.0.0.1' : url.hostname, port: upstreamPort ?? Number(url.port || 5432), database, user: upstreamUser ?? (url.username || 'postgres'), password: 'unused', tls: { mode: 'disable' }, connectTimeoutMs: 5000, maxMessageBytes: 1024 ** 3 },
    },
  });
  return {
    listener,
    port: listener.port,
    store,
    apiKeys,
    token,
    directUrl: created.url,
    database,
    observed,
    approvals,
    clientConfig: (extra = {}) => ({ host: '127.0.0.1', port: listener.port, user: 'agent', password: token, database, ...extra }),
    async close() {
      await listener.close();
      await approvals?.close();
      await recorder.drain();
      await store.close();
      await sqlite.cleanup();
      await created.drop();
    },
  };
}

/**
 * A suite's before and after around a proxy: a direct client runs `setupSql`, then
 * `ready` gets it and a client connected through the proxy; after the suite's tests
 * both end and the proxy closes.
 */
export function withProxyClients(proxy: TestProxy, setupSql: string, ready: (clients: { direct: pg.Client; client: pg.Client }) => void): void {
  let direct: pg.Client | undefined;
  let client: pg.Client | undefined;
  before(async () => {
    direct = new pg.Client({ connectionString: proxy.directUrl });
    await direct.connect();
    await direct.query(setupSql);
    client = new pg.Client(proxy.clientConfig());
    await client.connect();
    ready({ direct, client });
  });
  after(async () => {
    await client?.end();
    await direct?.end();
    await proxy.close();
  });
}
