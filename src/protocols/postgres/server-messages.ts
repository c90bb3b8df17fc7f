// Masking of what the database says besides rows: ErrorResponse, NoticeResponse and
// NotificationResponse. Each can carry a value of a masked column past the DataRow
// masking (mask-rows.ts), a whole value per statement:
//   select email::int from users        → invalid input syntax for type integer: "ann@example.com"
//   update users set name = null …      → DETAIL: Failing row contains (1, null, ann@example.com, …)
//   do $$ begin raise notice '%', (select email …); end $$   → NOTICE: ann@example.com
//   select email::json from users        → CONTEXT: JSON data, line 1: ann@example.com
// Enforces, on a connection with masking:
// - masking profiles (entity detection) scan every text field of an error or notice,
//   and a notification's payload;
// - with column rules, whose values the gateway cannot recognise in free text, for a
//   message that may come from reading a table (any but a statement that names no table
//   and runs no user-defined code: `select $1::int` quotes only the client's own value):
//   - a data exception (SQLSTATE class 22) keeps its message up to the value it quotes,
//     and loses its detail, hint and context;
//   - an integrity violation (class 23) keeps its message (names of constraints, columns
//     and tables) and loses its detail (`Key (email)=(…)`, `Failing row contains (…)`);
//   - what PL/pgSQL RAISE says (class P0, or a context `… at RAISE`) is withheld: its
//     text is whatever the function put in it;
// - the SQLSTATE, severity, position and the names of schema, table, column, type and
//   constraint stay, so a client still knows what failed where.
// A notification's payload is not masked by column rules: statements that would send a
// masked column's value with pg_notify are refused instead (derive-columns.ts).

import type { EntityCounts } from '../../mask/index.js';
import { message } from './build-messages.js';
import { BodyReader, type Frame } from './codec.js';
import type { MaskingRules } from './mask-rows.js';

/** Fields that are free text (message, detail, hint, context, internal query); the others are codes, names and positions. */
const textFields = new Set(['M', 'D', 'H', 'W', 'q']);
const withheldValue = '(value withheld by Gatehouse: this connection masks columns)';
const withheldRaise = 'message withheld by Gatehouse: what RAISE prints may carry values of masked columns on this connection';

/** The message masked, or undefined when it goes as it came; `readsTables`: false for a statement that reads no table (column rules have nothing to withhold). */
export function maskServerMessage(frame: Frame, rules: MaskingRules, counts: EntityCounts, readsTables = true): Buffer | undefined {
  const columnRules = rules.columns.size > 0 && readsTables;
  if (!columnRules && !rules.entities) return undefined;
  if (frame.type === 'A') return rules.entities ? maskNotification(frame.body, rules, counts) : undefined;
  if (frame.type !== 'E' && frame.type !== 'N') return undefined;
  const fields = readFields(frame.body);
  let changed = false;
  const set = (code: string, value: string | undefined) => {
    const i = fields.findIndex(([c]) => c === code);
    if (i < 0) return;
    changed = true;
    if (value === undefined) fields.splice(i, 1);
    else fields[i] = [code, value];
  };
  if (columnRules) {
    const sqlstate = fieldOf(fields, 'C') ?? '';
    const raise = sqlstate.startsWith('P0') || / at RAISE$/m.test(fieldOf(fields, 'W') ?? '');
    if (raise) {
      set('M', withheldRaise);
      set('D', undefined);
      set('H', undefined);
    } else if (sqlstate.startsWith('22')) {
      set('M', beforeValue(fieldOf(fields, 'M') ?? ''));
      set('D', undefined);
      set('H', undefined);
      set('W', undefined);
    } else if (sqlstate.startsWith('23')) {
      set('D', undefined);
    }
  }
  if (rules.entities) {
    for (const field of fields) {
      if (!textFields.has(field[0])) continue;
      const masked = rules.entities.text(field[1], counts);
      if (masked !== field[1]) {
        field[1] = masked;
        changed = true;
      }
    }
  }
  return changed ? writeFields(frame.type, fields) : undefined;
}

/** A data exception's message up to the value it quotes (`invalid input syntax for type integer: "…"`). */
function beforeValue(text: string): string {
  const quote = text.indexOf('"');
  const colon = text.indexOf(': ');
  const cut = [quote, colon].filter((i) => i >= 0);
  // Nothing quoted (`division by zero`): nothing to withhold.
  return cut.length > 0 ? `${text.slice(0, Math.min(...cut)).trimEnd()} ${withheldValue}` : text;
}

function maskNotification(body: Buffer, rules: MaskingRules, counts: EntityCounts): Buffer | undefined {
  const r = new BodyReader(body);
  const pid = r.int32();
  const channel = r.cstring();
  const payload = r.cstring();
  const masked = rules.entities!.text(payload, counts);
  if (masked === payload) return undefined;
  const head = Buffer.allocUnsafe(4);
  head.writeInt32BE(pid);
  return message('A', Buffer.concat([head, Buffer.from(`${channel}\0${masked}\0`, 'utf8')]));
}

function readFields(body: Buffer): [string, string][] {
  const out: [string, string][] = [];
  const r = new BodyReader(body);
  while (r.remaining > 0) {
    const code = r.int8();
    if (code === 0) break;
    out.push([String.fromCharCode(code), r.cstring()]);
  }
  return out;
}

function fieldOf(fields: readonly [string, string][], code: string): string | undefined {
  return fields.find(([c]) => c === code)?.[1];
}

function writeFields(type: string, fields: readonly [string, string][]): Buffer {
  return message(type, Buffer.from(`${fields.map(([code, value]) => `${code}${value.replaceAll('\0', '')}\0`).join('')}\0`, 'utf8'));
}
