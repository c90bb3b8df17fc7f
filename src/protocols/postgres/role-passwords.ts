// The password of CREATE / ALTER ROLE (USER, GROUP) — `password 'Sup3r…'`, or the SCRAM
// verifier psql's \password sends — is a credential: the record keeps the statement with
// the literal after PASSWORD replaced by '[REDACTED]' (the database receives it as sent;
// not even `audit.raw` keeps the original). Enforces:
// - only a string literal right after the keyword PASSWORD (not inside a literal, a
//   quoted identifier or a comment) is replaced: '…' with '' escapes, E'…' with backslash
//   escapes, U&'…', and dollar-quoted $tag$…$tag$;
// - linear in the text: each step advances, closing delimiters are found by indexOf.

const redacted = "'[REDACTED]'";

/** `text` with every literal after PASSWORD redacted (the same string when there is none). */
export function redactRolePasswords(text: string): string {
  if (!/password/i.test(text)) return text;
  const spans: [number, number][] = [];
  let afterPassword = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      i = skipBlockComment(text, i);
      continue;
    }
    const literal = literalEnd(text, i);
    if (literal !== undefined) {
      if (afterPassword) spans.push([i, literal]);
      afterPassword = false;
      i = literal;
      continue;
    }
    if (c === '"') {
      const end = quotedEnd(text, i + 1, '"');
      afterPassword = false;
      i = end;
      continue;
    }
    if (/[A-Za-z_\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < n && /[A-Za-z0-9_$\u0080-\uffff]/.test(text[j]!)) j++;
      afterPassword = text.slice(i, j).toLowerCase() === 'password';
      i = j;
      continue;
    }
    afterPassword = false;
    i++;
  }
  if (spans.length === 0) return text;
  let out = '';
  let copied = 0;
  for (const [start, end] of spans) {
    out += text.slice(copied, start) + redacted;
    copied = end;
  }
  return out + text.slice(copied);
}

/** The end of a string literal starting at `i`, or undefined when none starts there. */
function literalEnd(text: string, i: number): number | undefined {
  const c = text[i];
  if (c === "'") return quotedEnd(text, i + 1, "'");
  if ((c === 'e' || c === 'E') && text[i + 1] === "'") return escapedEnd(text, i + 2);
  if ((c === 'u' || c === 'U') && text[i + 1] === '&' && text[i + 2] === "'") return quotedEnd(text, i + 3, "'");
  if (c === '$') {
    const tag = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 64));
    if (!tag) return undefined;
    const close = text.indexOf(tag[0], i + tag[0].length);
    return close < 0 ? text.length : close + tag[0].length;
  }
  return undefined;
}

/** After an opening `quote` at `from - 1`: the end of the quoted run, a doubled quote standing for one. */
function quotedEnd(text: string, from: number, quote: string): number {
  let i = from;
  for (;;) {
    const close = text.indexOf(quote, i);
    if (close < 0) return text.length;
    if (text[close + 1] !== quote) return close + 1;
    i = close + 2;
  }
}

/** E'…': a backslash escapes the next character, '' is a quote. */
function escapedEnd(text: string, from: number): number {
  let i = from;
  while (i < text.length) {
    const c = text[i];
    if (c === '\\') i += 2;
    else if (c === "'") {
      if (text[i + 1] !== "'") return i + 1;
      i += 2;
    } else i++;
  }
  return text.length;
}

function skipBlockComment(text: string, from: number): number {
  let depth = 0;
  let i = from;
  while (i < text.length) {
    if (text[i] === '/' && text[i + 1] === '*') {
      depth++;
      i += 2;
    } else if (text[i] === '*' && text[i + 1] === '/') {
      depth--;
      i += 2;
      if (depth === 0) return i;
    } else i++;
  }
  return text.length;
}
