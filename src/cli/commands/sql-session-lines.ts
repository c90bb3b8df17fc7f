// `gatehouse sessions show` for PostgreSQL exchanges: the statement with its
// parameters and result; for a session record (`sql.session`), every statement in it.

import type { Kysely } from 'kysely';
import type { ExchangeDetail } from '../../audit/index.js';
import type { Database } from '../../store/index.js';

export async function sqlSessionLines(db: Kysely<Database>, exchange: ExchangeDetail): Promise<string[]> {
  const lines: string[] = [];
  const request = parse(exchange.request.body);
  const result = parse(exchange.response.body);
  if (exchange.operation === 'sql.session') {
    const rows = await db
      .selectFrom('exchanges')
      .select(['id', 'started_at', 'operation', 'decision', 'rules', 'duration_ms', 'error_code', 'request_body', 'response_body'])
      .where('session_id', '=', exchange.id)
      .where('id', '!=', exchange.id)
      .orderBy('seq')
      .limit(1000)
      .execute();
    // The session counts the statements it sent to the database; refused ones are recorded too.
    lines.push('', `statements ${rows.length}${rows.length === 1000 ? '+' : ''} recorded, ${result?.statements ?? '-'} sent to the database`);
    for (const row of rows) {
      const sql = parse(row.request_body);
      const res = parse(row.response_body);
      const rules = JSON.parse(row.rules) as string[];
      const outcome = row.error_code ? `error ${row.error_code}${res?.stopped ? ` after ${String(res.rows)} rows` : ''}` : `${res?.command ?? '-'} (${res?.rows ?? 0} rows)`;
      lines.push(`  ${row.id}  ${new Date(row.started_at).toISOString()}  ${row.operation}  ${row.decision}${rules.length && row.decision !== 'allow' ? ` (${rules.join(',')})` : ''}  ${outcome}  ${row.duration_ms ?? '-'} ms`);
      if (sql?.sql) lines.push(`      ${oneLine(String(sql.sql))}${Array.isArray(sql.params) ? `   params ${JSON.stringify(sql.params)}` : ''}`);
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
