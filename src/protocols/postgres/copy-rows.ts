// Masking the rows of a COPY … TO STDOUT (one CopyData message per row) field by field,
// with the plan a SELECT of the same columns gets (mask-rows.ts planMasking). Enforces:
// - a row is cut as the database writes it (copyto.c): in text format, fields split at
//   the delimiter, a backslash escaping the byte after it; in CSV, fields split at the
//   delimiter outside quotes, the escape character escaping a quote or itself inside
//   them; the row ends with a line feed (after a carriage return on Windows);
// - NULL is the NULL string, as sent (unquoted in CSV) and stays NULL;
// - a masked value is written back in the row's own syntax, so the output loads back
//   with COPY FROM: `null` → the NULL string, a label or a partial value escaped (text:
//   `\\`, `\n`, `\t`, the delimiter …) or quoted (CSV: where the database would quote it,
//   and in FORCE_QUOTE's columns; not because the value it replaces was: that would tell
//   the value held a comma or a quote);
// - every other byte is kept: a field no rule masks leaves as the bytes that came;
// - a row that cannot be cut so, or whose field count is not the description's, is not
//   masked (undefined): the caller stops the statement, the row never leaves raw.

import type { EntityCounts } from '../../mask/index.js';
import type { CopyFormat } from './copy-statement.js';
import type { ColumnPlan } from './mask-rows.js';

const LF = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;

/** One field of a row: its bytes [start, end), quotes included. */
interface Field {
  readonly start: number;
  readonly end: number;
  readonly quoted: boolean;
}

/** The row with its fields masked by `plan` (the same buffer when nothing changed); undefined when it cannot be read as a row of `plan.length` fields. */
export function maskCopyRow(row: Buffer, format: CopyFormat, plan: readonly ColumnPlan[], forced: readonly boolean[], counts: EntityCounts): Buffer | undefined {
  const fields = format.csv ? cutCsv(row, format) : cutText(row, format);
  if (!fields || fields.length !== plan.length) return undefined;
  let parts: Buffer[] | undefined;
  let copied = 0;
  for (let i = 0; i < fields.length; i++) {
    const p = plan[i]!;
    const f = fields[i]!;
    if (p.kind === 'keep' || isNull(row, f, format)) continue;
    const masked = maskField(row, f, p, format, forced[i] === true, fields.length === 1, counts);
    if (masked === undefined) continue;
    (parts ??= []).push(row.subarray(copied, f.start), masked);
    copied = f.end;
  }
  if (!parts) return row;
  parts.push(row.subarray(copied));
  return Buffer.concat(parts);
}

function maskField(row: Buffer, f: Field, p: ColumnPlan, format: CopyFormat, forced: boolean, single: boolean, counts: EntityCounts): Buffer | undefined {
  if (p.kind === 'null') return format.nullString;
  const value = format.csv ? csvValue(row, f, format) : textValue(row, f);
  let masked: string;
  if (p.kind === 'text') masked = p.apply(value.toString('utf8'));
  else if (p.kind === 'entities') {
    const out = p.apply(value, counts);
    if (out === undefined) return undefined;
    if (out === null) return format.nullString;
    masked = out.toString('utf8');
  } else return undefined;
  return format.csv ? csvField(masked, format, forced, single) : textField(masked, format.delimiter);
}

/** The end of the row's last field: before its line feed (and a carriage return before it); undefined without one. */
function rowEnd(row: Buffer): number | undefined {
  let end = row.length;
  if (end === 0 || row[end - 1] !== LF) return undefined;
  end--;
  if (end > 0 && row[end - 1] === CR) end--;
  return end;
}

function cutText(row: Buffer, format: CopyFormat): Field[] | undefined {
  const end = rowEnd(row);
  if (end === undefined) return undefined;
  const fields: Field[] = [];
  let start = 0;
  for (let i = 0; i < end; i++) {
    const b = row[i];
    if (b === BACKSLASH) {
      if (++i >= end) return undefined;
    } else if (b === format.delimiter) {
      fields.push({ start, end: i, quoted: false });
      start = i + 1;
    }
  }
  fields.push({ start, end, quoted: false });
  return fields;
}

function cutCsv(row: Buffer, format: CopyFormat): Field[] | undefined {
  const end = rowEnd(row);
  if (end === undefined) return undefined;
  const { delimiter, quote, escape } = format;
  const fields: Field[] = [];
  let start = 0;
  let inQuotes = false;
  let quoted = false;
  for (let i = 0; i < end; i++) {
    const b = row[i];
    if (inQuotes) {
      // As the database reads it (CopyReadAttributesCSV): the escape character first.
      if (b === escape && i + 1 < end && (row[i + 1] === quote || row[i + 1] === escape)) i++;
      else if (b === quote) inQuotes = false;
    } else if (b === delimiter) {
      fields.push({ start, end: i, quoted });
      start = i + 1;
      quoted = false;
    } else if (b === quote) {
      inQuotes = quoted = true;
    }
  }
  if (inQuotes) return undefined;
  fields.push({ start, end, quoted });
  return fields;
}

function isNull(row: Buffer, f: Field, format: CopyFormat): boolean {
  return !f.quoted && f.end - f.start === format.nullString.length && row.subarray(f.start, f.end).equals(format.nullString);
}

// Text format's escapes (COPY: "Backslash characters … in text format").
const unescapes: Readonly<Record<string, number>> = { b: 0x08, f: 0x0c, n: LF, r: CR, t: 0x09, v: 0x0b };

/** A text-format field's value. */
function textValue(row: Buffer, f: Field): Buffer {
  const out: number[] = [];
  for (let i = f.start; i < f.end; i++) {
    const b = row[i]!;
    if (b !== BACKSLASH) {
      out.push(b);
      continue;
    }
    const c = row[++i]!;
    const ch = String.fromCharCode(c);
    if (ch >= '0' && ch <= '7') {
      let n = c - 0x30;
      for (let k = 0; k < 2 && i + 1 < f.end && row[i + 1]! >= 0x30 && row[i + 1]! <= 0x37; k++) n = n * 8 + (row[++i]! - 0x30);
      out.push(n & 0xff);
    } else if (ch === 'x' && i + 1 < f.end && isHex(row[i + 1]!)) {
      let n = parseInt(String.fromCharCode(row[++i]!), 16);
      if (i + 1 < f.end && isHex(row[i + 1]!)) n = n * 16 + parseInt(String.fromCharCode(row[++i]!), 16);
      out.push(n);
    } else {
      out.push(unescapes[ch] ?? c);
    }
  }
  return Buffer.from(out);
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}

/** A value written as the database writes it in text format (CopyAttributeOutText). */
function textField(value: string, delimiter: number): Buffer {
  let out = '';
  for (const ch of value) {
    switch (ch) {
      case '\b': out += '\\b'; break;
      case '\f': out += '\\f'; break;
      case '\n': out += '\\n'; break;
      case '\r': out += '\\r'; break;
      case '\t': out += '\\t'; break;
      case '\v': out += '\\v'; break;
      case '\\': out += '\\\\'; break;
      default: out += ch.charCodeAt(0) === delimiter ? `\\${ch}` : ch;
    }
  }
  return Buffer.from(out, 'utf8');
}

/** A CSV field's value: its quotes taken away, its escapes undone. */
function csvValue(row: Buffer, f: Field, format: CopyFormat): Buffer {
  const { quote, escape } = format;
  const out: number[] = [];
  let inQuotes = false;
  for (let i = f.start; i < f.end; i++) {
    const b = row[i]!;
    if (inQuotes) {
      if (b === escape && i + 1 < f.end && (row[i + 1] === quote || row[i + 1] === escape)) out.push(row[++i]!);
      else if (b === quote) inQuotes = false;
      else out.push(b);
    } else if (b === quote) inQuotes = true;
    else out.push(b);
  }
  return Buffer.from(out);
}

/**
 * A value written as the database writes it in CSV (CopyAttributeOutCSV): quoted when it
 * holds the delimiter, the quote, a line break, equals the NULL string or, alone in its
 * row, is `\.`; and in FORCE_QUOTE's columns.
 */
function csvField(value: string, format: CopyFormat, forced: boolean, single: boolean): Buffer {
  const q = String.fromCharCode(format.quote);
  const e = String.fromCharCode(format.escape);
  const needs =
    forced ||
    value.includes(String.fromCharCode(format.delimiter)) ||
    value.includes(q) ||
    value.includes('\n') ||
    value.includes('\r') ||
    value === format.nullString.toString('utf8') ||
    (single && value === '\\.');
  if (!needs) return Buffer.from(value, 'utf8');
  let out = q;
  for (const ch of value) out += ch === q || ch === e ? e + ch : ch;
  return Buffer.from(out + q, 'utf8');
}
