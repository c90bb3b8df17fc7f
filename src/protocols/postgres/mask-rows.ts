// Masking of DataRow values, RowDescription-aware. Enforces:
// - a column named in `masking.columns` is masked by its operator, whatever the query;
// - text-like columns (text, varchar, char, name, citext-as-text) take a label:
//   `redact` → `[EMAIL]` (the column name, upper-cased), `partial` → all but the last
//   4 characters replaced by `*` (fewer for values shorter than 8); `null` → NULL;
// - any other type (numbers, dates, json, uuid, bytea …) cannot hold a label and stay
//   valid, so a masked value of such a column becomes NULL;
// - the optional `maskText` hook (entity detection) runs over every text-like value.

import { dataRow, parseDataRow, type ColumnDescription } from './codec.js';

export type MaskOperator = 'redact' | 'partial' | 'null';

export interface MaskingRules {
  /** Column name (lower-case) → operator. */
  readonly columns: ReadonlyMap<string, MaskOperator>;
  readonly maskText?: ((value: string) => string) | undefined;
}

// Type OIDs (pg_type.h): text, varchar, bpchar, name, unknown.
const textTypes = new Set([25, 1043, 1042, 19, 705]);

export function isTextType(oid: number): boolean {
  return textTypes.has(oid);
}

export function maskingActive(rules: MaskingRules): boolean {
  return rules.columns.size > 0 || rules.maskText !== undefined;
}

type ColumnPlan = { kind: 'keep' } | { kind: 'null' } | { kind: 'text'; apply: (value: string) => string };

/** Per-column plan for a RowDescription; undefined when nothing needs masking. */
export function planMasking(columns: readonly ColumnDescription[], rules: MaskingRules): ColumnPlan[] | undefined {
  let any = false;
  const plan = columns.map((column): ColumnPlan => {
    const op = rules.columns.get(column.name.toLowerCase());
    const textual = isTextType(column.typeOid);
    if (op !== undefined) {
      any = true;
      if (op === 'null' || !textual) return { kind: 'null' };
      const label = `[${column.name.toUpperCase()}]`;
      return { kind: 'text', apply: op === 'redact' ? () => label : partial };
    }
    if (textual && rules.maskText) {
      any = true;
      return { kind: 'text', apply: rules.maskText };
    }
    return { kind: 'keep' };
  });
  return any ? plan : undefined;
}

function partial(value: string): string {
  const chars = [...value];
  const keep = chars.length >= 8 ? 4 : Math.floor(chars.length / 4);
  return '*'.repeat(chars.length - keep) + chars.slice(chars.length - keep).join('');
}

/** Returns the DataRow message with masked values (a new buffer), or the same one when unchanged. */
export function maskDataRow(raw: Buffer, body: Buffer, plan: readonly ColumnPlan[]): Buffer {
  const values = parseDataRow(body);
  let changed = false;
  const out = values.map((value, i) => {
    const p = plan[i];
    if (value === null || !p || p.kind === 'keep') return value;
    changed = true;
    if (p.kind === 'null') return null;
    // Text-like values in binary format are their UTF-8 bytes as well.
    return Buffer.from(p.apply(value.toString('utf8')), 'utf8');
  });
  return changed ? dataRow(out) : raw;
}
