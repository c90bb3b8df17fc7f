// Masks a JSON document in its own text: only the string values that carry a finding
// are written again; every other byte (numbers as written — a 64-bit id is not rounded
// to a double —, whitespace, key order, escapes) is kept. The same rules as
// json-masker.ts (string values and member names, `fields` paths, `drop` removes an object's member
// and nulls an array's element). Enforces:
// - the document must be JSON (RFC 8259 numbers, literals, strings, structure); text
//   that is not is refused (SyntaxError), so the caller masks it as plain text rather
//   than pass a token it misread;
// - nesting deeper than maxDepth is refused (RangeError): the caller falls back to
//   parsing, so deep input cannot exhaust the stack here;
// - an object that loses a member is written again from its kept members (its own
//   whitespace between members is not kept); nothing else moves.

import { DROP, fieldsOf, joinedPartsAt, maskJsonAt, maskMemberNames, maskStringAt, takeShare, type JoinedParts } from './json-masker.js';
import { addCounts, type EntityCounts } from './operators.js';
import { partsMismatch, partsShapeAt } from './joined-text-parts.js';
import type { MaskPlan } from './plan.js';

const maxDepth = 256;

/**
 * Masks `text` as the JSON value at `path` (`[]` for a whole body): the new text (the
 * same string when unchanged), or undefined when the value itself is dropped. Throws
 * SyntaxError when `text` is not JSON; counts only what a successful pass masked.
 */
export function maskJsonSource(text: string, plan: MaskPlan, counts: EntityCounts, path: readonly string[] = []): string | undefined {
  const found: EntityCounts = {};
  let out: Out;
  let scanner: Scanner;
  try {
    scanner = new Scanner(text, plan, found, fieldsOf(plan));
    scanner.skipSpace();
    out = scanner.value([...path], 0);
    scanner.skipSpace();
    if (scanner.at < text.length) throw new SyntaxError(`unexpected text after the JSON value at ${scanner.at}`);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    // Too deep to scan here: parsed and written again instead (JSON.parse throws SyntaxError on bad input).
    const masked = maskJsonAt(JSON.parse(text), path, plan, counts);
    return masked === undefined ? undefined : JSON.stringify(masked);
  }
  addCounts(counts, found);
  if (out === DROP) return undefined;
  if (out === undefined) return text;
  // The value's own text within the document's leading and trailing whitespace.
  return text.slice(0, scanner.start) + out + text.slice(scanner.end);
}

/** A value's new text, undefined when unchanged, or DROP. */
type Out = string | undefined | typeof DROP;

class Scanner {
  at = 0;
  /** The root value's span (set by value at depth 0). */
  start = 0;
  end = 0;
  readonly #text: string;
  readonly #plan: MaskPlan;
  readonly #counts: EntityCounts;
  readonly #fields: string[][] | undefined;
  /** Scanning only, to find where a value ends: nothing is masked. */
  #lexOnly = false;
  /** The parts of a text joined across parts being scanned (joined-text-parts.ts). */
  #joined: JoinedParts | undefined;

  constructor(text: string, plan: MaskPlan, counts: EntityCounts, fields: string[][] | undefined) {
    this.#text = text;
    this.#plan = plan;
    this.#counts = counts;
    this.#fields = fields;
  }

  skipSpace(): void {
    const t = this.#text;
    let i = this.at;
    for (;;) {
      const c = t.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
    this.at = i;
  }

  value(path: string[], depth: number): Out {
    if (depth > maxDepth) throw new RangeError('JSON nested too deeply to mask in place');
    const c = this.#text.charCodeAt(this.at);
    if (depth === 0) this.start = this.at;
    let out: Out;
    if (c === 0x22) {
      const raw = this.#string();
      if (this.#lexOnly) return undefined;
      const masked = maskStringAt(raw, path, this.#plan, this.#counts, this.#fields);
      out = masked === DROP ? DROP : masked === raw ? undefined : JSON.stringify(masked);
    } else if (c === 0x7b) out = this.#object(path, depth);
    else if (c === 0x5b) out = this.#array(path, depth);
    else {
      const start = this.at;
      this.#scalar();
      out = this.#lexOnly ? undefined : maskCardNumber(this.#text.slice(start, this.at), path, this.#plan, this.#counts, this.#fields);
    }
    if (depth === 0) this.end = this.at;
    return out;
  }

  /** A string token from `at` (on its quote): its decoded value; `at` moves past it. */
  #string(): string {
    const t = this.#text;
    const start = this.at;
    let i = start + 1;
    let escaped = false;
    for (;;) {
      const q = t.indexOf('"', i);
      if (q < 0) throw new SyntaxError(`unterminated string at ${start}`);
      // A quote preceded by an odd number of backslashes is escaped.
      let b = q - 1;
      while (b > start && t.charCodeAt(b) === 0x5c) b--;
      if ((q - 1 - b) % 2 === 1) {
        escaped = true;
        i = q + 1;
        continue;
      }
      this.at = q + 1;
      const body = t.slice(start + 1, q);
      if (escaped || body.includes('\\')) return JSON.parse(t.slice(start, q + 1)) as string;
      for (let k = 0; k < body.length; k++) if (body.charCodeAt(k) < 0x20) throw new SyntaxError(`control character in string at ${start + 1 + k}`);
      return body;
    }
  }

  #object(path: string[], depth: number): Out {
    const t = this.#text;
    const open = this.at;
    this.at++;
    this.skipSpace();
    const members: { keyStart: number; keyEnd: number; valueStart: number; valueEnd: number; out: Out }[] = [];
    const keys: string[] = [];
    const share = this.#lexOnly ? undefined : takeShare(this.#joined, path);
    if (t.charCodeAt(this.at) === 0x7d) {
      this.at++;
      return undefined;
    }
    for (;;) {
      if (t.charCodeAt(this.at) !== 0x22) throw new SyntaxError(`expected a member name at ${this.at}`);
      const keyStart = this.at;
      const key = this.#string();
      const keyEnd = this.at;
      keys.push(key);
      this.skipSpace();
      if (t.charCodeAt(this.at) !== 0x3a) throw new SyntaxError(`expected ":" at ${this.at}`);
      this.at++;
      this.skipSpace();
      const valueStart = this.at;
      path.push(key);
      const out = share && key === share.field && t.charCodeAt(this.at) === 0x22 ? this.#share(share) : this.value(path, depth + 1);
      path.pop();
      members.push({ keyStart, keyEnd, valueStart, valueEnd: this.at, out });
      this.skipSpace();
      const c = t.charCodeAt(this.at);
      this.at++;
      if (c === 0x7d) break;
      if (c !== 0x2c) throw new SyntaxError(`expected "," or "}" at ${this.at - 1}`);
      this.skipSpace();
    }
    const close = this.at;
    if (this.#lexOnly) return undefined;
    // A member name can hold a value too (`{"ann@example.com": …}`): masked, kept unique.
    const names = maskMemberNames(keys, path, this.#plan, this.#counts, this.#fields);
    if (names) {
      members.forEach((m, i) => {
        if (names[i] === DROP) m.out = DROP;
      });
    }
    if (!names && members.every((m) => m.out === undefined)) return undefined;
    const name = (i: number) => (names && names[i] !== keys[i] ? JSON.stringify(names[i]) : undefined);
    if (members.some((m) => m.out === DROP)) {
      const kept = members.flatMap((m, i) => (m.out === DROP ? [] : [(name(i) ?? t.slice(m.keyStart, m.keyEnd)) + t.slice(m.keyEnd, m.valueStart) + ((m.out as string | undefined) ?? t.slice(m.valueStart, m.valueEnd))]));
      return `{${kept.join(',')}}`;
    }
    // Names and values as one list of spans, in order, for splice.
    const spans = members.flatMap((m, i) => [{ valueStart: m.keyStart, valueEnd: m.keyEnd, out: name(i) }, m]);
    return splice(t, open, close, spans);
  }

  /** A joined part's text member (its string token at `at`): its share. */
  #share(share: { readonly text: string; readonly dropped: boolean }): Out {
    const raw = this.#string();
    return share.dropped ? DROP : share.text === raw ? undefined : JSON.stringify(share.text);
  }

  #array(path: string[], depth: number): Out {
    const joined = this.#lexOnly ? undefined : this.#joinedParts(path, depth);
    if (!joined) return this.#elements(path, depth);
    const outer = this.#joined;
    this.#joined = joined;
    const out = this.#elements(path, depth);
    this.#joined = outer;
    if (joined.next !== joined.shares.length) throw partsMismatch();
    return out;
  }

  /** The joined parts of the array at `at`, when it holds a text split across parts (`at` stays put). */
  #joinedParts(path: string[], depth: number): JoinedParts | undefined {
    if (!partsShapeAt(path)) return undefined;
    const open = this.at;
    this.#lexOnly = true;
    try {
      this.#elements(path, depth);
    } finally {
      this.#lexOnly = false;
    }
    const container = JSON.parse(this.#text.slice(open, this.at)) as unknown[];
    this.at = open;
    return joinedPartsAt(path, container, this.#plan, this.#counts, this.#fields);
  }

  #elements(path: string[], depth: number): Out {
    const t = this.#text;
    const open = this.at;
    this.at++;
    this.skipSpace();
    const elements: { valueStart: number; valueEnd: number; out: Out }[] = [];
    if (t.charCodeAt(this.at) === 0x5d) {
      this.at++;
      return undefined;
    }
    path.push('[]');
    for (;;) {
      const valueStart = this.at;
      const out = this.value(path, depth + 1);
      // A dropped element becomes null: indexes stay put.
      elements.push({ valueStart, valueEnd: this.at, out: out === DROP ? 'null' : out });
      this.skipSpace();
      const c = t.charCodeAt(this.at);
      this.at++;
      if (c === 0x5d) break;
      if (c !== 0x2c) throw new SyntaxError(`expected "," or "]" at ${this.at - 1}`);
      this.skipSpace();
    }
    path.pop();
    if (this.#lexOnly || elements.every((e) => e.out === undefined)) return undefined;
    return splice(t, open, this.at, elements);
  }

  /** A number or a literal (true, false, null), checked against JSON's grammar. */
  #scalar(): void {
    const t = this.#text;
    const rest = t.slice(this.at, this.at + 5);
    if (rest.startsWith('true')) this.at += 4;
    else if (rest.startsWith('false')) this.at += 5;
    else if (rest.startsWith('null')) this.at += 4;
    else {
      number.lastIndex = this.at;
      const m = number.exec(t);
      if (!m || m[0].length === 0) throw new SyntaxError(`unexpected character at ${this.at}`);
      this.at += m[0].length;
    }
    // A value ends at whitespace, a separator or the end: `1.2.3` or `nullx` is not JSON.
    const next = t.charCodeAt(this.at);
    if (this.at < t.length && !(next === 0x2c || next === 0x5d || next === 0x7d || next === 0x20 || next === 0x0a || next === 0x0d || next === 0x09)) {
      throw new SyntaxError(`unexpected character at ${this.at}`);
    }
  }
}

/**
 * A card number written as a JSON number (`"card": 4111111111111111`) is masked like
 * the string it would be, and becomes one (or the field is dropped); undefined for any
 * other scalar. Only integers of 13-16 digits: 64-bit ids (17-19) stay numbers.
 */
export function maskCardNumber(literal: string, path: readonly string[], plan: MaskPlan, counts: EntityCounts, fields: string[][] | undefined): Out {
  if (literal.length < 13 || literal.length > 16 || !/^[1-9][0-9]+$/.test(literal)) return undefined;
  const masked = maskStringAt(literal, path, plan, counts, fields);
  return masked === DROP ? DROP : masked === literal ? undefined : JSON.stringify(masked);
}

// RFC 8259 number; sticky, so it matches at lastIndex only.
const number = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

/** The text from `open` to `close` with the changed values replaced and everything else as it was. */
function splice(text: string, open: number, close: number, parts: readonly { valueStart: number; valueEnd: number; out: Out }[]): string {
  let out = '';
  let at = open;
  for (const p of parts) {
    if (p.out === undefined) continue;
    out += text.slice(at, p.valueStart) + (p.out as string);
    at = p.valueEnd;
  }
  return out + text.slice(at, close);
}
