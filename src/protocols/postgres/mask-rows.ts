// Masking of DataRow values, RowDescription-aware. Enforces:
// - a column named in `masking.columns` is masked by its operator, whatever the query;
// - text-like columns (text, varchar, char, name, citext-as-text) take a label:
//   `redact` → `[EMAIL]` (the column name, upper-cased), `partial` → all but the last
//   4 characters replaced by `*` (fewer for values shorter than 8); `null` → NULL;
// - any other type (numbers, dates, json, uuid, bytea …) cannot hold a label and stay
//   valid, so a masked value of such a column becomes NULL;
// - masking profiles (entity detection, entity-masking.ts) scan the values no column
//   rule or derivation masks already;
// - a result column derived from a masked column (derive-columns.ts: an alias, an
//   expression, a whole row, a subquery's or CTE's column) is masked whatever its name:
//   `null` when a source's rule is `null`, otherwise redacted whole (`partial` would show
//   the end of whatever the expression made of the value), labelled with the source
//   column's name (`[MASKED]` for a whole row or a user-defined function's result);
//   an alias of the column itself (`ssn as "User_ssn"`) takes the column's own rule,
//   `partial` too, since its value is the column's;
// - a derived column found by name (between two `*`) that the result does not have
//   fails the statement: the gateway cannot tell which column carries the value.

import type { EntityCounts } from '../../mask/index.js';
import { dataRow, isTextType, parseDataRow, type ColumnDescription } from './codec.js';
import type { Derivation, StoredColumn } from './derive-columns.js';
import type { EntityMasking, ValueMasker } from './entity-masking.js';

export type MaskOperator = 'redact' | 'partial' | 'null';

export interface MaskingRules {
  /** Column name (lower-case) → operator. */
  readonly columns: ReadonlyMap<string, MaskOperator>;
  /** Masking profiles over result values and COPY rows (the profiles that apply to answers). */
  readonly entities?: EntityMasking | undefined;
  /** Masking profiles over the recorded statement: its request body (`{"sql","params"}`), masked. */
  readonly recorded?: ((body: string, counts: EntityCounts) => string) | undefined;
}

export function maskingActive(rules: MaskingRules): boolean {
  return rules.columns.size > 0 || rules.entities !== undefined;
}

const noColumns: ReadonlyMap<string, MaskOperator> = new Map();
const withoutColumns = new WeakMap<MaskingRules, MaskingRules>();

/**
 * The rules less their column rules, for a statement that reads only the system catalogs
 * (readsOnlySystemCatalogs): its columns carry no user table's value, whatever they are
 * called (psql's `\d` names a column "Name"); masking profiles still apply. One object
 * per rules, so that a plan made for them is reused.
 */
export function withoutColumnRules(rules: MaskingRules): MaskingRules {
  let out = withoutColumns.get(rules);
  if (!out) withoutColumns.set(rules, (out = { ...rules, columns: noColumns }));
  return out;
}

/**
 * A SELECT that names only relations of pg_catalog and information_schema, qualified (a
 * bare `pg_class` could be a table of the session's search_path), and runs nothing the
 * gateway cannot see (no risky shape: a user-defined or shadowed function, SQL in text …).
 * pg_catalog's column statistics, which hold values, are refused before this (decide-statement.ts).
 */
export function readsOnlySystemCatalogs(sql: { readonly classes: readonly string[]; readonly tables: readonly string[]; readonly risky: readonly string[] } | undefined): boolean {
  if (!sql || sql.tables.length === 0 || sql.risky.length > 0 || !sql.classes.every((c) => c === 'select')) return false;
  return sql.tables.every((t) => t.startsWith('pg_catalog.') || t.startsWith('information_schema.'));
}

export type ColumnPlan = { kind: 'keep' } | { kind: 'null' } | { kind: 'text'; apply: (value: string) => string } | { kind: 'entities'; apply: ValueMasker };

/** How one derived result column is masked. */
interface DerivedMask {
  /** `partial` only for an alias of a column whose rule is partial: the value is the column's own. */
  readonly operator: 'redact' | 'null' | 'partial';
  readonly label: string;
}

/** A statement's derived columns that carry masked values, by where they are in the result. */
export interface DerivedMasks {
  readonly byPosition: ReadonlyMap<number, DerivedMask>;
  readonly byName: ReadonlyMap<string, DerivedMask>;
  /** Every column (a set operation over `*`). */
  readonly all: DerivedMask | undefined;
  /** The masked column a value comes from, for messages. */
  readonly rule: string;
}

/** Why a result or a stored value cannot be masked: the masked column, and where its value would go. */
export interface Unmaskable {
  readonly rule: string;
  readonly target: string;
}

const resolved = new WeakMap<Derivation, WeakMap<MaskingRules['columns'], DerivedMasks | null>>();

/** The derived columns of `derivation` that carry a value of a column `rules` mask (memoised per rules). */
export function derivedMasks(derivation: Derivation | undefined, rules: MaskingRules): DerivedMasks | undefined {
  if (!derivation || rules.columns.size === 0 || (!derivation.results && !derivation.any)) return undefined;
  let byRules = resolved.get(derivation);
  if (!byRules) resolved.set(derivation, (byRules = new WeakMap()));
  let masks = byRules.get(rules.columns);
  if (masks === undefined) {
    masks = resolve(derivation, rules);
    byRules.set(rules.columns, masks);
  }
  return masks ?? undefined;
}

function resolve(derivation: Derivation, rules: MaskingRules): DerivedMasks | null {
  const wholeRowOp = [...rules.columns.values()].includes('null') ? 'null' : 'redact';
  if (derivation.any) return { byPosition: new Map(), byName: new Map(), all: { operator: wholeRowOp, label: '[MASKED]' }, rule: [...rules.columns.keys()][0]! };
  const byPosition = new Map<number, DerivedMask>();
  const byName = new Map<string, DerivedMask>();
  let rule: string | undefined;
  for (const column of derivation.results ?? []) {
    const found = maskFor(column, rules, wholeRowOp);
    if (!found) continue;
    // An alias of the column itself shows what the column would: its own rule, partial too.
    const mask = column.copyOf !== undefined && rules.columns.get(column.copyOf.toLowerCase()) === 'partial' ? { ...found, operator: 'partial' as const } : found;
    rule ??= mask.rule;
    if (column.position !== undefined) byPosition.set(column.position, mask);
    else byName.set(column.name.toLowerCase(), mask);
  }
  return rule === undefined ? null : { byPosition, byName, all: undefined, rule };
}

function maskFor(column: { readonly sources: readonly string[]; readonly wholeRow: boolean }, rules: MaskingRules, wholeRowOp: 'null' | 'redact'): (DerivedMask & { rule: string }) | undefined {
  let source: string | undefined;
  let operator: 'redact' | 'null' = 'redact';
  for (const s of column.sources) {
    const op = rules.columns.get(s.toLowerCase());
    if (op === undefined) continue;
    source ??= s.toLowerCase();
    if (op === 'null') operator = 'null';
  }
  if (source !== undefined) return { operator: column.wholeRow ? (operator === 'null' ? 'null' : wholeRowOp) : operator, label: `[${source.toUpperCase()}]`, rule: source };
  if (column.wholeRow) return { operator: wholeRowOp, label: '[MASKED]', rule: [...rules.columns.keys()][0]! };
  return undefined;
}

/** The first value a statement would keep under a name no column rule covers (a view, a table, a cursor). */
export function unmaskableStore(derivation: Derivation | undefined, rules: MaskingRules): Unmaskable | undefined {
  if (!derivation?.stores || rules.columns.size === 0) return undefined;
  for (const stored of derivation.stores as readonly StoredColumn[]) {
    // Under a name whose rule hides the whole value (redact, null), whatever is kept reads back masked.
    const kept = stored.name === undefined ? undefined : rules.columns.get(stored.name.toLowerCase());
    if (kept === 'redact' || kept === 'null') continue;
    const mask = maskFor(stored, rules, 'redact');
    // Under `partial`, a value computed from a masked column would show another part of it.
    if (mask) return { rule: mask.rule, target: `${stored.target ?? 'another column'}${kept === 'partial' ? ' (partial, which would show part of it)' : ''}` };
  }
  return undefined;
}

/** A derived column expected by name that the result does not have (the plan would miss it). */
export function missingDerived(columns: readonly ColumnDescription[], derived: DerivedMasks | undefined): string | undefined {
  if (!derived || derived.byName.size === 0) return undefined;
  for (const name of derived.byName.keys()) if (!columns.some((c) => c.name.toLowerCase() === name)) return name;
  return undefined;
}

/** Per-column plan for a RowDescription; undefined when nothing needs masking. */
export function planMasking(columns: readonly ColumnDescription[], rules: MaskingRules, derived?: DerivedMasks): ColumnPlan[] | undefined {
  let any = false;
  const n = columns.length;
  const plan = columns.map((column, i): ColumnPlan => {
    const op = rules.columns.get(column.name.toLowerCase());
    const textual = isTextType(column.typeOid);
    const d = derived && (derived.byPosition.get(i) ?? derived.byPosition.get(i - n) ?? derived.byName.get(column.name.toLowerCase()) ?? derived.all);
    if (d !== undefined) {
      any = true;
      if (d.operator === 'null' || !textual) return { kind: 'null' };
      if (d.operator === 'partial') return { kind: 'text', apply: partial };
      const label = d.label;
      return { kind: 'text', apply: () => label };
    }
    if (op !== undefined) {
      any = true;
      if (op === 'null' || !textual) return { kind: 'null' };
      const label = `[${column.name.toUpperCase()}]`;
      return { kind: 'text', apply: op === 'redact' ? () => label : partial };
    }
    const entities = rules.entities?.column(column);
    if (entities) {
      any = true;
      return { kind: 'entities', apply: entities };
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

/** Returns the DataRow message with masked values (a new buffer), or the same one when unchanged; entities found are counted. */
export function maskDataRow(raw: Buffer, body: Buffer, plan: readonly ColumnPlan[], counts: EntityCounts): Buffer {
  const values = parseDataRow(body);
  let changed = false;
  const out = values.map((value, i) => {
    const p = plan[i];
    if (value === null || !p || p.kind === 'keep') return value;
    if (p.kind === 'entities') {
      const masked = p.apply(value, counts);
      if (masked === undefined) return value;
      changed = true;
      return masked;
    }
    changed = true;
    if (p.kind === 'null') return null;
    // Text-like values in binary format are their UTF-8 bytes as well.
    return Buffer.from(p.apply(value.toString('utf8')), 'utf8');
  });
  return changed ? dataRow(out) : raw;
}
