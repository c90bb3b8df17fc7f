// `gatehouse sessions replay ID`: the exchange as it happened — the request, the
// decision, then the answer as a timeline of the pieces relayed, each with its time
// since the exchange started, cut from the recorded body by the recorded byte counts.

import { timeline, type ExchangeDetail } from '../../audit/index.js';
import { maxStatements, statementSummary, statementText, type SessionStatement } from './sql-session-lines.js';

/** `statements`: for a PostgreSQL session (`sql.session`), its statements, laid out on its timeline. */
export function replayLines(exchange: ExchangeDetail, statements: readonly SessionStatement[] = []): string[] {
  const lines = [
    `${exchange.startedAt}  +0ms  ${exchange.subject ?? '(nobody)'} → ${exchange.connection} ${exchange.request.method ?? ''} ${exchange.request.path ?? ''} (${exchange.operation})`,
    `        decision ${exchange.decision} (${exchange.rules.join(', ') || '-'}; ${exchange.reason ?? '-'})${exchange.reexecutionOf ? `  re-execution of ${exchange.reexecutionOf}` : ''}`,
  ];
  if (exchange.request.promptText) lines.push(`        prompt: ${hanging(exchange.request.promptText)}`);
  if (exchange.ttfbMs !== null) lines.push(`        +${exchange.ttfbMs}ms  first byte from the target, status ${exchange.status ?? '-'}`);
  // A session's answer is its statements: each at its time since the login, as run.
  const started = Date.parse(exchange.startedAt);
  for (const s of statements) {
    lines.push(`        +${Math.max(0, s.startedAt - started)}ms  ${s.id}  ${statementSummary(s)}`);
    const text = statementText(s);
    if (text) lines.push(`                ${text}`);
  }
  if (statements.length === maxStatements) lines.push(`        (only the first ${maxStatements} statements are listed)`);
  let cutNoted = false;
  for (const entry of timeline(exchange)) {
    // Past recording.maxBodyBytes pieces are known by size only: say so once, or the
    // blank lines read as empty chunks.
    if (entry.text === undefined && exchange.response.truncated && !cutNoted) {
      lines.push('        (the recorded answer body ends here: it was truncated at recording.maxBodyBytes; later pieces by size only)');
      cutNoted = true;
    }
    lines.push(`        +${entry.atMs}ms  ${entry.bytes} B${entry.text === undefined ? '' : `  ${JSON.stringify(entry.text)}`}`);
  }
  const end = exchange.durationMs === null ? '' : `+${exchange.durationMs}ms  `;
  lines.push(`        ${end}${exchange.complete ? 'complete' : 'INCOMPLETE'}${exchange.errorCode ? ` (${exchange.errorCode})` : ''}, ${exchange.bytesOut} B out`);
  if (exchange.response.text) lines.push(`        answer: ${hanging(exchange.response.text)}`);
  return lines;
}

/**
 * A prompt's or answer's later lines, indented under its first: at the timeline's own
 * indent they read as timeline rows (a tools schema's words, or rows a caller wrote).
 */
function hanging(text: string): string {
  return text.replace(/\r?\n/g, '\n                ');
}
