// `gatehouse sessions show` for PostgreSQL exchanges: the statement with its
// parameters and result; for a session record (`sql.session`), every statement in it
// (sessionStatements, which `sessions replay` lays out on the session's timeline).

import type { Kysely } from 'kysely';
import type { ExchangeDetail } from '../../audit/index.js';
import type { Database } from '../../store/index.js';

/** One statement of a PostgreSQL session, as recorded. */
export interface SessionStatement {
  readonly id: string;
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly operation: string;
  readonly decision: string;
  readonly rules: readonly string[];
  readonly durationMs: number | null;
  readonly errorCode: string | null;
  readonly sql: string | undefined;
  readonly params: readonly unknown[] | undefined;
  readonly command: string | undefined;
  readonly rows: number;
  /** The gateway stopped it (row limit …) after `rows` rows. */
  readonly stopped: boolean;
}

/** The most statements listed for one session. */
export const maxStatements = 1000;

export async function sessionStatements(db: Kysely<Database>, sessionId: string): Promise<SessionStatement[]> {
  const rows = await db
    .selectFrom('exchanges')
    .select(['id', 'started_at', 'operation', 'decision', 'rules', 'duration_ms', 'error_code', 'request_body', 'response_body'])
    .where('session_id', '=', sessionId)
    .where('id', '!=', sessionId)
    .orderBy('seq')
    .limit(maxStatements)
    .execute();
  return rows.map((row) => {
    const sql = parse(row.request_body);
    const res = parse(row.response_body);
    return {
      id: row.id,
      startedAt: Number(row.started_at),
      operation: row.operation,
      decision: row.decision,
      rules: JSON.parse(row.rules) as string[],
      durationMs: row.duration_ms === null ? null : Number(row.duration_ms),
      errorCode: row.error_code,
      sql: sql?.sql === undefined ? undefined : String(sql.sql),
      params: Array.isArray(sql?.params) ? (sql.params as unknown[]) : undefined,
      command: res?.command == null ? undefined : String(res.command),
      rows: Number(res?.rows ?? 0),
      stopped: res?.stopped !== undefined,
    };
  });
}

/** A statement's line: its decision (with the rules that refused it) and its outcome. */
export function statementSummary(s: SessionStatement): string {
  const outcome = s.errorCode ? `error ${s.errorCode}${s.stopped ? ` after ${s.rows} rows` : ''}` : `${s.command ?? '-'} (${s.rows} rows)`;
  return `${s.operation}  ${s.decision}${s.rules.length && s.decision !== 'allow' ? ` (${s.rules.join(',')})` : ''}  ${outcome}  ${s.durationMs ?? '-'} ms`;
}

/** The statement's text on one line, with its Bind parameters. */
export function statementText(s: SessionStatement): string | undefined {
  return s.sql === undefined ? undefined : `${oneLine(s.sql)}${s.params ? `   params ${JSON.stringify(s.params)}` : ''}`;
}

export async function sqlSessionLines(db: Kysely<Database>, exchange: ExchangeDetail): Promise<string[]> {
  const lines: string[] = [];
  const request = parse(exchange.request.body);
  const result = parse(exchange.response.body);
  if (exchange.operation === 'sql.session') {
    const statements = await sessionStatements(db, exchange.id);
    // The session counts the statements it sent to the database; refused ones are recorded too.
    lines.push('', `statements ${statements.length}${statements.length === maxStatements ? '+' : ''} recorded, ${result?.statements ?? '-'} sent to the database`);
    for (const s of statements) {
      lines.push(`  ${s.id}  ${new Date(s.startedAt).toISOString()}  ${statementSummary(s)}`);
      const text = statementText(s);
      if (text) lines.push(`      ${text}`);
    }
    return lines;
  }
  lines.push('', '--- sql ---', String(request?.sql ?? exchange.request.promptText ?? ''));
  if (Array.isArray(request?.params)) lines.push(`params    ${JSON.stringify(request.params)}`);
  // A statement the gateway stopped (row limit …): the rows the client got, and why no more.
  if (result) lines.push(`result    ${result.command ?? '-'}  rows ${result.rows ?? 0}${result.stopped ? `, then stopped by the gateway (${String(result.stopped)})` : ''}`);
  return lines;
}

function parse(text: string | null | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function oneLine(sql: string): string {
  const flat = sql.replace(/\s+/g, ' ');
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}
