// One client session through a PostgreSQL connection, after login: client messages
// are read in order, inspected, decided and forwarded (client-messages.ts); database
// messages are routed to what they answer, masked, counted and relayed
// (database-messages.ts); what both sides share — the FIFO of expected answers, the
// outboxes, the cancel gate, the recording — is session-core.ts. Enforces, across them:
// - every statement is decided by policy before the database sees it, and refused
//   statements are answered in order — client-messages.ts;
// - every statement is recorded: durable before it is forwarded, its outcome durable
//   before the ReadyForQuery that ends it is released — statement-recording.ts;
// - what one batch of messages produces leaves in one write each way — outbox.ts;
// - when the session ends, statements still outstanding are recorded as ended with
//   why, and what was recorded as forwarded is still sent;
// - a malformed client message ends this session (FATAL 08P01), and no other.

import type { Duplex } from 'node:stream';
import { GatehouseError } from '../../errors/index.js';
import type { Identity } from '../../exchange/index.js';
import type { PipelineStages } from '../../pipeline/index.js';
import { ClientMessages } from './client-messages.js';
import type { PostgresConnection } from './connection.js';
import { DatabaseMessages } from './database-messages.js';
import { errorResponseFor } from './errors.js';
import type { FrameSource } from './frame-source.js';
import type { UpstreamSession } from './forward.js';
import { SessionCore } from './session-core.js';
import type { SessionTables } from './table-catalog.js';

export interface SessionContext {
  readonly connection: PostgresConnection;
  readonly stages: PipelineStages;
  readonly identity: Identity;
  readonly sessionId: string;
  readonly clientAddress: string | undefined;
  readonly userAgent: string | undefined;
  readonly cancelUpstream: () => Promise<void>;
  /**
   * Built-in function names a function outside pg_catalog shares on the database (read
   * at login, function-catalog.ts), and those the session gives its own functions: an
   * unqualified call of one is a user-defined function's (inspect-sql.ts forSession).
   */
  readonly shadowedFunctions: Set<string>;
  /** The names each table name may stand for on the database (read at login, table-catalog.ts). */
  readonly tables?: SessionTables | undefined;
}

export class PostgresSession {
  readonly #core: SessionCore;
  readonly #client: ClientMessages;
  readonly #database: DatabaseMessages;

  constructor(ctx: SessionContext, client: Duplex, clientSource: FrameSource, upstream: UpstreamSession) {
    this.#core = new SessionCore(ctx, client, upstream);
    this.#client = new ClientMessages(this.#core, clientSource);
    this.#database = new DatabaseMessages(this.#core);
  }

  get bytesIn(): number {
    return this.#core.bytesIn;
  }

  get bytesOut(): number {
    return this.#core.bytesOut;
  }

  get statements(): number {
    return this.#core.statements;
  }

  /** Runs until either side ends; resolves with why it ended (undefined: the client terminated). */
  async run(): Promise<GatehouseError | undefined> {
    const core = this.#core;
    const ended = await core.ended(() => {
      this.#client.pump();
      this.#database.pump();
    });
    core.closed = true;
    core.timer.clear();
    for (const r of core.uncommitted) core.recording.finish(r, ended ?? new GatehouseError('client_closed'));
    for (const p of core.pending) {
      if (p.kind === 'query' || p.kind === 'end') for (const r of p.runs) core.recording.finish(r, ended ?? new GatehouseError('client_closed'));
      if (p.kind === 'execute') core.recording.finish(p.run, ended ?? new GatehouseError('client_closed'));
    }
    await core.recording.settled();
    // What was recorded as forwarded is sent, even when the session ends right after it.
    core.sendToDatabase();
    core.upstream.close();
    return ended;
  }

  /**
   * Ends the session from outside (its identity was revoked, the gateway is shutting
   * down): the client gets a FATAL ErrorResponse with `error`, a statement running at
   * the database is cancelled, and the records carry the code, not client_closed.
   */
  cut(error: GatehouseError): void {
    const core = this.#core;
    if (core.closed) return;
    // A statement running at the database is stopped, not left to finish unobserved.
    if (core.pending.length > 0) void core.ctx.cancelUpstream().catch(() => undefined);
    if (!core.client.destroyed) core.toClient.end(errorResponseFor(error, 'FATAL'));
    core.end(error);
  }

  /**
   * CancelRequest for this session: ends a hold for approval (57014). Returns true when
   * that was all there was to cancel: a hold, with nothing outstanding at the database.
   * Otherwise the listener cancels the database too; it must not when the database is
   * idle, since a cancel that arrives late would fail the client's next statement.
   */
  cancelHold(): boolean {
    return this.#client.cancelHold();
  }
}
