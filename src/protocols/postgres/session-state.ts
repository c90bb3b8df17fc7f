// What a PostgreSQL session keeps about its statements while they are in flight, shared
// by the modules that handle them (session.ts and the modules it is made of). Plain data.

import type { Decision, Exchange } from '../../exchange/index.js';
import type { GatehouseError } from '../../errors/index.js';
import type { ColumnDescription } from './codec.js';
import type { CopyMasking } from './copy-out.js';
import type { StatementShape } from './decide-statement.js';
import type { StatementFacts } from './inspect-sql.js';
import type { EntityCounts } from '../../mask/index.js';
import type { DerivedMasks, MaskingRules, planMasking } from './mask-rows.js';

/** How the values of one result are masked; undefined: nothing to mask. */
export type MaskPlan = ReturnType<typeof planMasking>;

/** One statement sent to the database: its exchange and what came back so far. */
export interface Run {
  readonly exchange: Exchange;
  readonly decision: Decision;
  readonly started: number;
  rows: number;
  bytesOut: number;
  ttfbMs: number | undefined;
  tag: string | undefined;
  error: { code: string; detail: string; status: number } | undefined;
  /**
   * The gateway ended it while the database was still sending (row limit, rows it could
   * not mask): the error code. The client got `rows` rows and that error, not the
   * database's CommandComplete, so its tag is not what the record says.
   */
  stopped?: string | undefined;
  timedOut: boolean;
  done: boolean;
  /** Its result columns derived from masked columns (masked whatever their names). */
  readonly derived?: DerivedMasks | undefined;
  /** The connection's masking, with the profiles its decision adds (obligations.mask). */
  readonly masking: MaskingRules;
  /** A COPY … TO STDOUT masked column by column (copy-out.ts). */
  copy: CopyMasking | undefined;
  /** Values masked by entity type (masking profiles), for its record. */
  maskCounts: EntityCounts | undefined;
  /**
   * What the session learns once the database has run it (CommandComplete): a DEALLOCATE's
   * names are gone only then (a Query that fails before it, or a Parse of it never
   * executed, leaves the statement prepared).
   */
  completed: (() => void) | undefined;
  /**
   * Gives back the approval it used (hold-statement.ts), when the database did not run
   * it (skipped after an earlier error in its batch or Query): a reviewer's one-time
   * consent is not spent on a statement that never ran (StatementRecording.finish).
   */
  giveBack?: (() => Promise<void>) | undefined;
}

/** A prepared statement (Parse), by name. */
export interface StatementInfo {
  readonly facts: readonly StatementFacts[];
  readonly text: string;
  /** Operation and facts of each Execute's exchange, made once at Parse. */
  readonly shape: StatementShape;
  /** The text as a JSON string, for each Execute's recorded request. */
  readonly textJson: string;
  /**
   * The prepared statement an `EXECUTE name` (also inside EXPLAIN ANALYZE or CREATE TABLE
   * AS) in it ran when it was parsed: its facts are that statement's, so one prepared
   * again under the name since is not what the gateway decided.
   */
  readonly executes?: { readonly name: string; readonly statement: StatementInfo | undefined };
  columns: ColumnDescription[] | undefined;
}

/** A portal (Bind), by name. */
export interface PortalInfo {
  readonly statement: StatementInfo | undefined;
  readonly params: readonly (string | null)[];
  /** What an approval is bound to when some values are binary: their SHA-256 in place of the marker. */
  readonly approvalParams: readonly (string | null)[] | undefined;
  readonly resultFormats: readonly number[];
  columns: ColumnDescription[] | undefined;
  /**
   * The database refused the Bind (`cursor "n" already exists`): a portal of this name
   * may still be there, over another statement, so nothing the gateway knows describes it.
   */
  bindFailed?: boolean;
}

/** What the database owes the session, in order (a FIFO: pipelining keeps answers in order). */
export type Pending =
  /** `wrapped`: between a BEGIN and a COMMIT or ROLLBACK of the gateway's (client-query.ts #wrappedQuery). */
  | { kind: 'query'; runs: Run[]; index: number; columns: ColumnDescription[] | undefined; plan: MaskPlan; wrapped?: boolean }
  /** The gateway's BEGIN before a wrapped Query: its answer is not relayed. */
  | { kind: 'begin' }
  /**
   * The gateway's COMMIT (`commit`) or ROLLBACK after a wrapped Query: its error and its
   * ReadyForQuery are relayed as the Query's, and the Query's `runs` are recorded once it
   * is answered (a failed COMMIT fails them all).
   */
  | { kind: 'end'; runs: Run[]; commit: boolean }
  /** `statement`, `portal`: what the message made, so that the database's error for it is recorded as the failure of the Executes that run it. */
  /** `skipped`: puts back what the name was, when the database skips the Parse. */
  | { kind: 'parse'; statement: StatementInfo | undefined; skipped?: (() => void) | undefined }
  | { kind: 'bind'; portal: PortalInfo | undefined }
  /** `closed`: forgets the statement closed, at CloseComplete. */
  | { kind: 'close'; closed?: (() => void) | undefined }
  /**
   * `silent`: ours (after a cancel), its ReadyForQuery is not relayed. `afterCopyEnd`:
   * sent after the client's CopyDone or CopyFail (it sent a COPY's data without waiting
   * for CopyInResponse): the COPY is over when the database reads it, so it is answered.
   */
  | { kind: 'sync'; silent?: boolean; afterCopyEnd?: true }
  | { kind: 'describe'; described: StatementInfo | PortalInfo | undefined }
  /** `plan` null: not planned yet (at the first DataRow). */
  | { kind: 'execute'; run: Run; portal: PortalInfo | undefined; plan: MaskPlan | null }
  /** A refused statement: the database's error for our bogus Bind is replaced by this one. */
  | { kind: 'denied'; error: GatehouseError }
  /** Our bogus Bind after a cancel of ours: its error, which clears any pending cancel, is not relayed. */
  | { kind: 'absorb' }
  /**
   * The gateway's own description of a COPY's columns (copy-out.ts), and the first
   * values of the rows of a catalog query beside it, or its look-up of tables the
   * session's catalog does not know (table-lookup.ts): answered up to its ReadyForQuery,
   * none of it relayed. `closesLeft`: sent with a Flush inside the client's open extended
   * batch (a COPY's Execute), it is answered at its last CloseComplete, or at an error
   * (the database then skips to the client's Sync), and `skipped` when the database
   * skipped it (an error earlier in the batch).
   */
  | { kind: 'probe'; columns: ColumnDescription[] | undefined; values: string[]; error: string | undefined; closesLeft?: number; skipped?: boolean; answered: (result: { columns: ColumnDescription[]; values: string[] } | string) => void };
