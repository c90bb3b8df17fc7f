// The shape of a query: its text with the content of every literal (strings, numbers)
// replaced by a placeholder, so statements that differ only in literal values share one
// inspection (`SELECT … WHERE aid = 17` and `… = 42`). A small hand-written lexer after
// PostgreSQL's scan.l (standard_conforming_strings on, as libpg-query assumes). Enforces:
// - everything but literal content is kept verbatim (keywords, identifiers, quoted
//   identifiers, operators, parameters, whitespace, comments): equal keys mean the same
//   tokens in the same places;
// - integers (ICONST, up to 9 digits) and other numbers (FCONST) take different
//   placeholders, since some grammar rules accept only an integer;
// - anything it is not sure about gives undefined (the caller parses in full): U&, B'',
//   X'', N'' literals, E'' escapes that can fail (\x, octal, \u, \U), string
//   continuation across a newline, numbers followed by junk, long integers, unterminated
//   literals or comments, unbalanced parentheses, NUL and the placeholder character;
// - linear in the text (each step advances; closing delimiters found by indexOf).

export interface SqlShape {
  /** The text with literal contents replaced; never equal to a real query text. */
  readonly key: string;
  /** The statements' texts, cut at top-level semicolons and trimmed (empty ones dropped). */
  readonly statements: readonly string[];
}

const marker = '\u0001';

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isIdentStart = (c: number) => (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c >= 0x80;
// ASCII characters that continue an identifier (letters, digits, _, $), as a table: the
// identifier loop is most of the lexer's work.
const identContAscii = new Uint8Array(128);
for (let c = 0; c < 128; c++) identContAscii[c] = isIdentStart(c) || isDigit(c) || c === 0x24 ? 1 : 0;
const isIdentCont = (c: number) => (c < 128 ? identContAscii[c] === 1 : true);

/** The shape of `text`, or undefined when the lexer is not sure of it. */
export function sqlShape(text: string): SqlShape | undefined {
  const n = text.length;
  let key = '';
  let verbatimFrom = 0; // start of the text not yet copied into the key
  let statementFrom = 0;
  let depth = 0;
  const statements: string[] = [];
  const literal = (start: number, end: number, kind: string) => {
    key += text.slice(verbatimFrom, start) + marker + kind;
    verbatimFrom = end;
  };
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x20) {
      i++;
      continue;
    }
    const next = i + 1 < n ? text.charCodeAt(i + 1) : -1;
    if (c === 0x2d && next === 0x2d) {
      // -- comment, to the end of the line
      i = lineEnd(text, i + 2);
    } else if (c === 0x2f && next === 0x2a) {
      // /* comment */, nested
      const end = blockCommentEnd(text, i + 2);
      if (end < 0) return undefined;
      i = end;
    } else if (c === 0x27) {
      // '…': '' is a quote, backslash is an ordinary character
      const end = quotedEnd(text, i + 1, false);
      if (end < 0 || continuesOnNextLine(text, end)) return undefined;
      literal(i, end, 'S');
      i = end;
    } else if (c === 0x22) {
      // "identifier": kept verbatim
      const end = quotedEnd(text, i + 1, false, 0x22);
      if (end < 0) return undefined;
      i = end;
    } else if (c === 0x24) {
      // $n parameter, or $tag$…$tag$ string
      if (isDigit(next)) {
        let j = i + 1;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
        if (j < n && (isIdentCont(text.charCodeAt(j)) || text.charCodeAt(j) === 0x2e)) return undefined;
        i = j;
        continue;
      }
      let j = i + 1;
      if (j < n && isIdentStart(text.charCodeAt(j))) {
        j++;
        while (j < n && isIdentCont(text.charCodeAt(j)) && text.charCodeAt(j) !== 0x24) j++;
      }
      if (j >= n || text.charCodeAt(j) !== 0x24) return undefined;
      const delimiter = text.slice(i, j + 1);
      const close = text.indexOf(delimiter, j + 1);
      if (close < 0) return undefined;
      literal(i, close + delimiter.length, 'S');
      i = close + delimiter.length;
    } else if (isDigit(c) || (c === 0x2e && isDigit(next))) {
      const end = numberEnd(text, i);
      if (end < 0) return undefined;
      const integer = allDigits(text, i, end);
      // Beyond int32 PostgreSQL makes it an FCONST: long integers are left to the parser.
      if (integer && end - i > 9) return undefined;
      literal(i, end, integer ? 'I' : 'F');
      i = end;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n) {
        const d = text.charCodeAt(j);
        if (d < 128 && identContAscii[d] === 0) break;
        j++;
      }
      const after = j < n ? text.charCodeAt(j) : -1;
      if (j === i + 1 && after === 0x27) {
        // One-letter prefix of a string: E'…' is understood; B'', X'', N'' are not.
        if (c !== 0x45 && c !== 0x65) return undefined;
        const end = quotedEnd(text, j + 1, true);
        if (end < 0 || continuesOnNextLine(text, end)) return undefined;
        literal(i, end, 'S');
        i = end;
        continue;
      }
      if (j === i + 1 && (c === 0x55 || c === 0x75) && after === 0x26) return undefined; // U&'…' / U&"…"
      i = j;
    } else {
      if (c === 0 || c === 1) return undefined;
      if (c === 0x28) depth++;
      else if (c === 0x29 && --depth < 0) return undefined;
      else if (c === 0x3b && depth === 0) {
        const piece = text.slice(statementFrom, i).trim();
        if (piece !== '') statements.push(piece);
        statementFrom = i + 1;
      }
      i++;
    }
  }
  if (depth !== 0) return undefined;
  const last = text.slice(statementFrom).trim();
  if (last !== '') statements.push(last);
  return { key: key + text.slice(verbatimFrom), statements };
}

function lineEnd(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) return i;
  }
  return text.length;
}

function blockCommentEnd(text: string, from: number): number {
  let depth = 1;
  for (let i = from; i < text.length - 1; i++) {
    const c = text.charCodeAt(i);
    const next = text.charCodeAt(i + 1);
    if (c === 0x2f && next === 0x2a) {
      depth++;
      i++;
    } else if (c === 0x2a && next === 0x2f) {
      i++;
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** End (after the closing quote) of a quoted string or identifier, -1 if unterminated or unsure. */
function quotedEnd(text: string, from: number, escapes: boolean, quote = 0x27): number {
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0 || c === 1) return -1;
    if (escapes && c === 0x5c) {
      // E'' escapes: \x, octal, \u and \U can fail (bad code point, invalid UTF-8).
      const e = text.charCodeAt(i + 1);
      if (Number.isNaN(e) || e === 0x78 || e === 0x75 || e === 0x55 || (e >= 0x30 && e <= 0x37)) return -1;
      i++;
    } else if (c === quote) {
      if (text.charCodeAt(i + 1) === quote) i++;
      else return i + 1;
    }
  }
  return -1;
}

/** '…' followed by whitespace with a newline and another quote is one literal in PostgreSQL: not handled. */
function continuesOnNextLine(text: string, from: number): boolean {
  let newline = false;
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a || c === 0x0d) newline = true;
    else if (c === 0x2d && text.charCodeAt(i + 1) === 0x2d) i = lineEnd(text, i + 2) - 1;
    else if (c !== 0x20 && c !== 0x09 && c !== 0x0c && c !== 0x0b) return newline && c === 0x27;
  }
  return false;
}

function allDigits(text: string, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/** End of a numeric literal (digits, fraction, exponent), -1 when junk follows (PostgreSQL 15+ rejects it; 0x1F, 1_000 are newer forms). */
function numberEnd(text: string, from: number): number {
  const n = text.length;
  let i = from;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  if (i < n && text.charCodeAt(i) === 0x2e) {
    i++;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
  }
  if (i < n && (text.charCodeAt(i) === 0x65 || text.charCodeAt(i) === 0x45)) {
    let j = i + 1;
    if (j < n && (text.charCodeAt(j) === 0x2b || text.charCodeAt(j) === 0x2d)) j++;
    if (!(j < n && isDigit(text.charCodeAt(j)))) return -1;
    while (j < n && isDigit(text.charCodeAt(j))) j++;
    i = j;
  }
  if (i < n && (isIdentCont(text.charCodeAt(i)) || text.charCodeAt(i) === 0x2e)) return -1;
  return i;
}
