// Recording of a session's statements (the recorder stage, through `stages`). Enforces:
// - a statement is recorded before it is forwarded (`open`); when that fails the caller
//   refuses it (recording_failed, fail closed) and nothing is sent;
// - a refused statement is one record with its error (`refuse`);
// - each statement's outcome is written when it ends (`finish`) and observed (metrics,
//   logs); `settled()` is what ReadyForQuery waits for, so the outcome is durable
//   before the client may send its next statement;
// - the request body is `{"sql", "params"?}`, the response body `{"command", "rows"}`.

import { performance } from 'node:perf_hooks';
import { GatehouseError } from '../../errors/index.js';
import type { Decision, Exchange, ExchangeOutcome, RecordedRequest } from '../../exchange/index.js';
import type { EntityCounts } from '../../mask/index.js';
import type { PipelineStages } from '../../pipeline/index.js';
import { rowsFromTag } from './codec.js';
import type { DerivedMasks, MaskingRules } from './mask-rows.js';
import { withoutPasswords } from './statement-passwords.js';
import type { Run } from './session-state.js';

/**
 * A statement on its way to the database. `held`: it waited for approval since its
 * exchange started, and its duration (hence its record's end) counts the wait, as an
 * HTTP exchange's does: the record of a statement approved after a minute ends after it.
 */
export function newRun(exchange: Exchange, decision: Decision, masking: MaskingRules, derived?: DerivedMasks, held = false): Run {
  const now = performance.now();
  const started = held ? now - Math.max(0, Date.now() - exchange.startedAt) : now;
  return { exchange, decision, started, rows: 0, bytesOut: 0, ttfbMs: undefined, tag: undefined, error: undefined, timedOut: false, done: false, derived, masking, copy: undefined, maskCounts: undefined, completed: undefined };
}

const noHeaders: Readonly<Record<string, string>> = Object.freeze({});

/** What the recording keeps of a statement: its text and its parameters (masked by the caller). */
export function requestOf(method: string, text: string, params: readonly (string | null)[] | undefined, textJson = JSON.stringify(text)): RecordedRequest {
  // The same JSON as JSON.stringify({ sql, params }), without walking an object per
  // statement (and, for a prepared statement, with its text made JSON once).
  const body = params ? `{"sql":${textJson},"params":${paramsJson(params)}}` : `{"sql":${textJson}}`;
  return { method, path: '', headers: noHeaders, body, truncated: false };
}

/** JSON.stringify(params), most often one or two values. */
function paramsJson(params: readonly (string | null)[]): string {
  if (params.length === 1) {
    const p = params[0]!;
    return p === null ? '[null]' : `[${JSON.stringify(p)}]`;
  }
  return JSON.stringify(params);
}

const ignore = (): undefined => undefined;

// The last command tag's JSON and row count: statements mostly repeat it (the session
// hands the same string back for the same bytes, so the check is one comparison).
let lastTag = { tag: '', json: '""', rows: undefined as number | undefined };

function tagOf(tag: string): { json: string; rows: number | undefined } {
  if (tag !== lastTag.tag) lastTag = { tag, json: JSON.stringify(tag), rows: rowsFromTag(tag) };
  return lastTag;
}

export function outcomeOf(run: Run, failure?: GatehouseError): ExchangeOutcome {
  const error = failure ? { code: failure.code, detail: failure.detail ?? failure.message, status: failure.status } : run.error;
  return {
    status: error ? error.status : 200,
    complete: true,
    bytesIn: 0,
    bytesOut: run.bytesOut,
    ttfbMs: run.ttfbMs,
    durationMs: performance.now() - run.started,
    // JSON.stringify({ command, rows }), written out: rows is an integer. A statement the
    // gateway stopped records what the client got: the rows sent, no command tag (the
    // database's, "SELECT 6000", never reached it), and why it stopped.
    responseBody: run.stopped !== undefined
      ? `{"command":null,"rows":${run.rows},"stopped":${JSON.stringify(run.stopped)}}`
      : `{"command":${run.tag === undefined ? 'null' : tagOf(run.tag).json},"rows":${run.tag && !error ? (tagOf(run.tag).rows ?? run.rows) : run.rows}}`,
    errorCode: error?.code,
    errorDetail: error?.detail,
    maskCounts: run.maskCounts && Object.keys(run.maskCounts).length > 0 ? run.maskCounts : undefined,
  };
}

/**
 * The statement as recorded: with profiles that apply to requests, its text and
 * parameters masked (the body, and the text kept for search), the sent body sealed
 * only with audit.raw (rawBody). The database receives the statement as sent.
 */
function recorded(exchange: Exchange, request: RecordedRequest, masking: MaskingRules, counts: () => EntityCounts): { exchange: Exchange; request: RecordedRequest } {
  ({ exchange, request } = withoutRolePasswords(exchange, request));
  if (!masking.recorded || request.body === undefined) return { exchange, request };
  const body = masking.recorded(request.body, counts());
  if (body === request.body) return { exchange, request };
  const sql = (JSON.parse(body) as { sql?: unknown }).sql;
  return {
    exchange: { ...exchange, facts: { ...exchange.facts, text: typeof sql === 'string' ? sql : undefined } },
    request: { ...request, body, rawBody: request.body },
  };
}

/** The statement recorded with a role's password as `'[redacted]'` (statement-passwords.ts). */
function withoutRolePasswords(exchange: Exchange, request: RecordedRequest): { exchange: Exchange; request: RecordedRequest } {
  const text = exchange.facts.text;
  const clean = text === undefined ? text : withoutPasswords(text);
  if (clean === text || request.body === undefined) return { exchange, request };
  const body = JSON.parse(request.body) as { sql?: unknown };
  if (typeof body.sql === 'string') body.sql = withoutPasswords(body.sql);
  const sql = exchange.facts.sql;
  return {
    exchange: { ...exchange, facts: { ...exchange.facts, text: clean, ...(sql ? { sql: { ...sql, text: withoutPasswords(sql.text) } } : {}) } },
    // Not kept sealed either: a password is no content to reveal.
    request: { ...request, body: JSON.stringify(body) },
  };
}

export class StatementRecording {
  readonly #stages: Pick<PipelineStages, 'recorder' | 'observe'>;
  readonly #maskingFor: (decision: Decision | undefined) => MaskingRules;
  readonly #finishing: Promise<void>[] = [];

  constructor(stages: Pick<PipelineStages, 'recorder' | 'observe'>, maskingFor: (decision: Decision | undefined) => MaskingRules) {
    this.#stages = stages;
    this.#maskingFor = maskingFor;
  }

  /**
   * Records the statements as forwarded: the caller continues with `then(forward,
   * (error) => refuse with failed(runs, error))`, one reaction per statement.
   */
  open(runs: readonly Run[], requests: readonly RecordedRequest[]): Promise<unknown> {
    const recorder = this.#stages.recorder;
    try {
      const record = (run: Run, i: number): Promise<void> => {
        const masked = recorded(run.exchange, requests[i]!, run.masking, () => (run.maskCounts ??= {}));
        return recorder.open(masked.exchange, run.decision, masked.request);
      };
      return runs.length === 1 ? record(runs[0]!, 0) : Promise.all(runs.map(record));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Recording the statements failed: the error to refuse them with (observed already). */
  failed(runs: readonly Run[], error: unknown): GatehouseError {
    const failure = new GatehouseError('recording_failed', { detail: (error as Error).message });
    for (const run of runs) this.#stages.observe(run.exchange, run.decision, outcomeOf(run, failure));
    return failure;
  }

  /** A statement refused before it reached the database. */
  async refuse(exchange: Exchange, decision: Decision | undefined, request: RecordedRequest, error: GatehouseError): Promise<void> {
    let counts: EntityCounts | undefined;
    const masked = recorded(exchange, request, this.#maskingFor(decision), () => (counts ??= {}));
    const outcome: ExchangeOutcome = { status: error.status, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: Date.now() - exchange.startedAt, errorCode: error.code, errorDetail: error.detail ?? error.message, maskCounts: counts };
    await this.#stages.recorder.refuse(masked.exchange, decision, masked.request, outcome).catch(() => undefined);
    this.#stages.observe(exchange, decision, outcome);
  }

  /**
   * Ends a statement (once): its outcome is written, and observed. `not_executed` (the
   * database skipped it) gives back the approval it used (Run.giveBack).
   */
  finish(run: Run, error?: GatehouseError, code?: string): void {
    if (run.done) return;
    run.done = true;
    if (error && !run.error) run.error = { code: code ?? error.code, detail: error.message, status: error.status };
    const outcome = outcomeOf(run);
    this.#finishing.push(this.#stages.recorder.finish(run.exchange, outcome).catch(ignore));
    // Not run by the database: its approval is usable again before the client hears ReadyForQuery.
    if (code === 'not_executed' && run.giveBack) this.#finishing.push(run.giveBack().catch(ignore));
    this.#stages.observe(run.exchange, run.decision, outcome);
  }

  /** Resolves when every outcome written so far is durable; undefined when there is none to wait for. */
  settled(): Promise<unknown> | undefined {
    if (this.#finishing.length === 0) return undefined;
    // Each promise already swallows its error (finish).
    const finishing = this.#finishing.splice(0);
    return finishing.length === 1 ? finishing[0]! : Promise.all(finishing);
  }
}
