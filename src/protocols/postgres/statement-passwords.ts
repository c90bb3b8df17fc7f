// A role's password in a statement (`CREATE ROLE app LOGIN PASSWORD 'S3cret!'`, `ALTER
// USER … ENCRYPTED PASSWORD '…'`, a user mapping's `OPTIONS (password '…')`) is a
// credential: the record keeps the statement with that literal as `'[redacted]'`, as
// pgaudit does, while the database receives it as sent. Enforces:
// - the literal right after the keyword PASSWORD (spaces, newlines and comments between)
//   is replaced, whatever its form ('…' with '' inside, E'…' with escapes, $tag$…$tag$);
// - nothing else changes: `where password = 'x'` (an operator between) and the word
//   inside literals, quoted identifiers or comments are left as written;
// - one forward pass; a literal left open runs to the end of the text (redacted too).

const redacted = "'[redacted]'";

/** `text` with each literal that follows the keyword PASSWORD replaced; the same string when there is none. */
export function withoutPasswords(text: string): string {
  if (!/password/i.test(text)) return text;
  let out = '';
  let copied = 0;
  let afterPassword = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === '-' && text[i + 1] === '-') {
      const end = text.indexOf('\n', i);
      i = end < 0 ? n : end + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const literalEnd = stringLiteralEnd(text, i);
    if (literalEnd !== undefined) {
      if (afterPassword) {
        out += text.slice(copied, i) + redacted;
        copied = literalEnd;
      }
      afterPassword = false;
      i = literalEnd;
      continue;
    }
    if (c === '"') {
      const end = text.indexOf('"', i + 1);
      i = end < 0 ? n : end + 1;
      afterPassword = false;
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
  return copied === 0 ? text : out + text.slice(copied);
}

/** Where the string literal starting at `i` ends (one past it), or undefined when none starts there. */
function stringLiteralEnd(text: string, i: number): number | undefined {
  const c = text[i];
  if (c === "'") return quotedEnd(text, i + 1, false);
  if ((c === 'E' || c === 'e') && text[i + 1] === "'") return quotedEnd(text, i + 2, true);
  if (c === '$') {
    const tag = /^\$(?:[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 64));
    if (!tag) return undefined;
    const end = text.indexOf(tag[0], i + tag[0].length);
    return end < 0 ? text.length : end + tag[0].length;
  }
  return undefined;
}

function quotedEnd(text: string, from: number, backslashes: boolean): number {
  let k = from;
  while (k < text.length) {
    const ch = text[k]!;
    if (backslashes && ch === '\\') k += 2;
    else if (ch === "'") {
      if (text[k + 1] === "'") k += 2;
      else return k + 1;
    } else k++;
  }
  return text.length;
}
