// Masking of what the database says besides rows: ErrorResponse, NoticeResponse,
// NotificationResponse and ParameterStatus. Each can carry a value of a masked column
// past the DataRow masking (mask-rows.ts), a whole value per statement:
//   select email::int from users        → invalid input syntax for type integer: "ann@example.com"
//   select email::regclass from users   → schema "ann@example" does not exist
//   update users set name = null …      → DETAIL: Failing row contains (1, null, ann@example.com, …)
//   do $$ begin raise notice '%', (select email …); end $$   → NOTICE: ann@example.com
// Enforces, on a connection with masking:
// - masking profiles (entity detection) scan every text field of an error or notice,
//   a notification's payload and a reported setting's value (ParameterStatus);
// - with column rules, whose values the gateway cannot recognise in free text, for a
//   message answering a statement that may read a table (it names one, or runs code whose
//   tables are unknown; `select $1::int` can quote only what the client sent):
//   - the message keeps what it quotes only when it is about the statement's text (it
//     has a position) and the statement holds everything it quotes (`relation "nosuch"
//     does not exist`); otherwise it is cut at its first quote: an error raised while
//     running quotes data (`null value in column "name" …` keeps its column in the
//     column field); such a message is cut at its first number and `: ` too, which
//     PostgreSQL writes unquoted (`date field value out of range: 2020-97-01`);
//   - what PL/pgSQL RAISE says (class P0, or a context `… at RAISE`) is withheld whole:
//     its text is whatever the function put in it;
//   - detail, hint, context and internal query go: values appear there unquoted
//     (`Key (email)=(…)`, `Failing row contains (…)`, `JSON data, line 1: …`);
// - the SQLSTATE, severity, position and the names of schema, table, column, type and
//   constraint stay, so a client still knows what failed where.
// A notification's payload is not masked by column rules: statements that would send a
// masked column's value with pg_notify are refused instead (function-stores.ts).

import type { EntityCounts } from '../../mask/index.js';
import { message } from './build-messages.js';
import { BodyReader, noticeFieldList, type Frame } from './codec.js';
import type { MaskingRules } from './mask-rows.js';

/** Fields that are free text (message, detail, hint, context, internal query); the others are codes, names and positions. */
const textFields = new Set(['M', 'D', 'H', 'W', 'q']);
/** Free text besides the message: dropped under column rules. */
const auxiliaryFields = new Set(['D', 'H', 'W', 'q']);
const withheldValue = '(what it quotes is withheld by Gatehouse: this connection masks columns)';
const withheldUnquoted = '(the values it shows are withheld by Gatehouse: this connection masks columns)';
const withheldRaise = 'message withheld by Gatehouse: what RAISE prints may carry values of masked columns on this connection';

/**
 * The message masked, or undefined when it goes as it came. `statement`: the text of the
 * statement it answers and whether that may read a table (undefined: unknown, it may).
 */
export function maskServerMessage(frame: Frame, rules: MaskingRules, counts: EntityCounts, statement?: { readonly text: string; readonly readsTables: boolean }): Buffer | undefined {
  const columnRules = rules.columns.size > 0 && statement?.readsTables !== false;
  if (!columnRules && !rules.entities) return undefined;
  if (frame.type === 'A') return rules.entities ? maskNotification(frame.body, rules, counts) : undefined;
  if (frame.type === 'S') return rules.entities ? maskParameterStatus(frame.body, rules, counts) : undefined;
  if (frame.type !== 'E' && frame.type !== 'N') return undefined;
  let fields = noticeFieldList(frame.body);
  let changed = false;
  if (columnRules) {
    const sqlstate = fieldOf(fields, 'C') ?? '';
    const raise = sqlstate.startsWith('P0') || / at RAISE$/m.test(fieldOf(fields, 'W') ?? '');
    const text = fieldOf(fields, 'M') ?? '';
    const kept = raise ? withheldRaise : fieldOf(fields, 'P') !== undefined ? aboutStatement(text, statement?.text) : raisedWhileRunning(text);
    const before = fields.length;
    fields = fields.filter(([code]) => !auxiliaryFields.has(code)).map(([code, value]) => [code, code === 'M' ? kept : value]);
    changed = kept !== text || fields.length !== before;
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

/** A message about the statement's text (it has a position): what it quotes is the client's, else cut. */
function aboutStatement(text: string, statement: string | undefined): string {
  return !text.includes('"') || quotesOnlyStatement(text, statement) ? text : beforeQuote(text);
}

/**
 * A message raised while running, where what follows a quote, a colon or a number may
 * be data: PostgreSQL quotes strings (`invalid input syntax …: "…"`) but not numbers
 * (`time field value out of range: 123456:00:00` from make_time(salary, …), `index 97
 * out of valid range` from get_bit(…, ascii(email))) nor what follows a colon
 * (`operator does not exist: …`). The message is cut at the first of them; the
 * statement's text cannot vouch for a number (a comment can hold every number).
 */
function raisedWhileRunning(text: string): string {
  const quote = text.indexOf('"');
  const at = firstUnquoted(text);
  if (at === -1) return quote === -1 ? text : beforeQuote(text);
  // `…: "value"`: the colon only introduces the quote.
  if (quote !== -1 && (quote < at || /^[\s:]*$/.test(text.slice(at, quote)))) return beforeQuote(text);
  return `${text.slice(0, at).replace(/[\s:,(=-]+$/, '')} ${withheldUnquoted}`.trimStart();
}

/** Where an unquoted value may start: a colon and space, or the word holding the first digit; -1 when neither. */
function firstUnquoted(text: string): number {
  const colon = text.indexOf(': ');
  const digit = text.search(/\S*\d/);
  if (colon === -1) return digit;
  if (digit === -1) return colon;
  return Math.min(colon, digit);
}

/**
 * Whether every `"…"` the message quotes is in the statement's text (an identifier the
 * client wrote), with no quote left over: PostgreSQL does not escape a quote inside
 * what it quotes, so a value holding quotes (`x" ann@example.com "y`) would otherwise
 * look like two short quoted names with the value between them.
 */
function quotesOnlyStatement(text: string, statement: string | undefined): boolean {
  if (statement === undefined) return false;
  const quoted = text.match(/"[^"]*"/g) ?? [];
  if (quoted.length * 2 !== text.split('"').length - 1) return false;
  const sql = statement.toLowerCase();
  return quoted.every((q) => sql.includes(q.slice(1, -1).toLowerCase()));
}

/** The message up to what it quotes (`invalid input syntax for type integer: "…"`). */
function beforeQuote(text: string): string {
  const quote = text.indexOf('"');
  return `${text.slice(0, quote).replace(/[\s:]+$/, '')} ${withheldValue}`;
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

/**
 * ParameterStatus: a reported setting's new value, which set_config() can take from any
 * column (`select set_config('application_name', body, false) from notes`).
 */
function maskParameterStatus(body: Buffer, rules: MaskingRules, counts: EntityCounts): Buffer | undefined {
  const r = new BodyReader(body);
  const name = r.cstring();
  const value = r.cstring();
  const masked = rules.entities!.text(value, counts);
  if (masked === value) return undefined;
  return message('S', Buffer.from(`${name}\0${masked.replaceAll('\0', '')}\0`, 'utf8'));
}

function fieldOf(fields: readonly [string, string][], code: string): string | undefined {
  return fields.find(([c]) => c === code)?.[1];
}

function writeFields(type: string, fields: readonly [string, string][]): Buffer {
  return message(type, Buffer.from(`${fields.map(([code, value]) => `${code}${value.replaceAll('\0', '')}\0`).join('')}\0`, 'utf8'));
}
