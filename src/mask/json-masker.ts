// Masks a JSON value: string values and member names (numbers and structure are kept),
// or only those under the plan's field paths. A path is dotted keys, `[]` for "each array
// element", `*` for any one key and `**` for any depth: `choices[].message.content`,
// `messages[].content`, `user.*`, `**.email`. A path also covers everything below it.
// The `drop` operator removes a field whose value held a finding (in an array the
// element becomes null, so indexes stay put). Returns a new value; the input is not
// modified.

import type { MaskPlan } from './plan.js';
import { addCounts, applyFindings, type EntityCounts } from './operators.js';
import { maskJsonSource } from './json-text-masker.js';
import { joinedShares, partsMismatch, partsShapeAt, samePath, type PartShare } from './joined-text-parts.js';
import { isGatehouseError } from '../errors/index.js';

export const DROP = Symbol('drop');
type Segment = string;

export function compileFieldPaths(paths: readonly string[] | undefined): Segment[][] | undefined {
  if (!paths) return undefined;
  return paths.map((p) => p.split('.').flatMap((part) => {
    const segs: Segment[] = [];
    let name = part;
    while (name.endsWith('[]')) {
      name = name.slice(0, -2);
      segs.unshift('[]');
    }
    return name === '' ? segs : [name, ...segs];
  }));
}

export function maskJsonValue(value: unknown, plan: MaskPlan, counts: EntityCounts, fields = compileFieldPaths(plan.fields)): unknown {
  const result = walk(value, [], plan, counts, fields);
  return result === DROP ? null : result;
}

const planFields = new WeakMap<MaskPlan, Segment[][] | undefined>();

/**
 * Masks `value` as the part at `path` of a larger document, so the plan's field paths
 * reach it from the document's root: a PostgreSQL column's value is at `[column]`.
 * Returns undefined when the value itself is dropped.
 */
export function maskJsonAt(value: unknown, path: readonly string[], plan: MaskPlan, counts: EntityCounts): unknown {
  const result = walk(value, [...path], plan, counts, fieldsOf(plan));
  return result === DROP ? undefined : result;
}

/** Each profile's compiled `fields`, for plans whose profiles are restricted differently. */
const scopedFields = new WeakMap<MaskPlan, Array<Segment[][] | undefined>>();

/** The plan of the profiles whose own `fields` cover `path` (undefined: none does). */
function planAt(plan: MaskPlan, path: readonly Segment[]): MaskPlan | undefined {
  const scoped = plan.scoped;
  if (!scoped) return plan;
  let compiled = scopedFields.get(plan);
  if (!compiled) scopedFields.set(plan, (compiled = scoped.fields.map((f) => compileFieldPaths(f))));
  const indices: number[] = [];
  compiled.forEach((f, i) => {
    if (!f || f.some((p) => covers(p, path))) indices.push(i);
  });
  if (indices.length === 0) return undefined;
  return indices.length === compiled.length ? plan : scoped.narrow(indices);
}

/** The plan that masks a string at `path` (undefined: no profile's fields cover it). */
export function planCovering(path: readonly Segment[], plan: MaskPlan, fields: Segment[][] | undefined): MaskPlan | undefined {
  if (fields && !fields.some((f) => covers(f, path))) return undefined;
  return planAt(plan, path);
}

/** A string value at `path`: masked by the profiles whose fields cover it, or DROP (the same string when nothing was found). */
export function maskStringAt(value: string, path: readonly Segment[], plan: MaskPlan, counts: EntityCounts, fields: Segment[][] | undefined): string | typeof DROP {
  const here = planCovering(path, plan, fields);
  if (!here) return value;
  const findings = here.find(value);
  if (findings.length === 0) return value;
  if (findings.some((f) => f.operator === 'drop')) {
    for (const f of findings) counts[f.type] = (counts[f.type] ?? 0) + 1;
    return DROP;
  }
  return applyFindings(value, findings, counts);
}

/** Member names no profile of a plan finds anything in (when no `fields` scope them), per plan: most names recur in every answer. */
const cleanNames = new WeakMap<MaskPlan, Set<string>>();
const maxCleanNames = 4096;

/**
 * An object's member names masked like string values (a name can hold the value:
 * `{"ann@example.com": {...}}`): undefined when none changed, else one entry per name —
 * the name (kept or masked, made unique within the object with `#2`, `#3` …) or DROP
 * (`drop` removes the member). The name at `path` + name is what `fields` must cover.
 */
export function maskMemberNames(names: readonly string[], path: readonly Segment[], plan: MaskPlan, counts: EntityCounts, fields: Segment[][] | undefined): (string | typeof DROP)[] | undefined {
  const cacheable = fields === undefined && plan.scoped === undefined;
  let clean = cacheable ? cleanNames.get(plan) : undefined;
  if (cacheable && !clean) cleanNames.set(plan, (clean = new Set()));
  let out: (string | typeof DROP)[] | undefined;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (name === '' || clean?.has(name)) continue;
    const masked = maskStringAt(name, [...path, name], plan, counts, fields);
    if (masked === name) {
      if (clean && clean.size < maxCleanNames && name.length <= 128) clean.add(name);
      continue;
    }
    out ??= [...names];
    out[i] = masked;
  }
  if (!out) return undefined;
  // Masked names must stay unique: two addresses both become `[EMAIL]`.
  const taken = new Set(names.filter((n, i) => out![i] === n));
  for (let i = 0; i < out.length; i++) {
    const name = out[i]!;
    if (name === DROP || name === names[i]) continue;
    let unique = name;
    for (let n = 2; taken.has(unique); n++) unique = `${name}#${n}`;
    taken.add(unique);
    out[i] = unique;
  }
  return out;
}

/** The compiled `fields` of a plan (cached). */
export function fieldsOf(plan: MaskPlan): Segment[][] | undefined {
  let fields = planFields.get(plan);
  if (fields === undefined && !planFields.has(plan)) planFields.set(plan, (fields = compileFieldPaths(plan.fields)));
  return fields;
}

/** The parts of a text joined across parts (joined-text-parts.ts): where they are, each one's share, and the next to take. */
export interface JoinedParts {
  readonly part: readonly string[];
  readonly shares: readonly (PartShare | undefined)[];
  next: number;
}

/** The joined parts under the array at `path`, if it holds a text split across parts (undefined: mask each string alone). */
export function joinedPartsAt(path: readonly Segment[], container: readonly unknown[], plan: MaskPlan, counts: EntityCounts, fields: Segment[][] | undefined): JoinedParts | undefined {
  const shape = partsShapeAt(path);
  if (!shape) return undefined;
  const shares = joinedShares(shape, container, (field) => planCovering([...shape.part, field], plan, fields), counts);
  return shares && { part: shape.part, shares, next: 0 };
}

/** The share of the part object at `path`, taken in document order (undefined: not a joined part). */
export function takeShare(joined: JoinedParts | undefined, path: readonly Segment[]): PartShare | undefined {
  if (!joined || !samePath(path, joined.part)) return undefined;
  // Duplicate member names can make the text show parts JSON.parse did not count: fail closed.
  if (joined.next >= joined.shares.length) throw partsMismatch();
  return joined.shares[joined.next++];
}

function walk(value: unknown, path: Segment[], plan: MaskPlan, counts: EntityCounts, fields: Segment[][] | undefined, joined?: JoinedParts): unknown {
  if (typeof value === 'string') return maskStringAt(value, path, plan, counts, fields);
  // A card number written as a number (json-text-masker.ts, maskCardNumber).
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1e12 && value < 1e16) {
    const literal = String(value);
    const masked = maskStringAt(literal, path, plan, counts, fields);
    return masked === literal ? value : masked;
  }
  if (Array.isArray(value)) {
    const parts = joinedPartsAt(path, value, plan, counts, fields) ?? joined;
    return value.map((item) => {
      const r = walk(item, [...path, '[]'], plan, counts, fields, parts);
      return r === DROP ? null : r;
    });
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    const entries = Object.entries(value);
    const names = maskMemberNames(entries.map(([k]) => k), path, plan, counts, fields);
    const share = takeShare(joined, path);
    entries.forEach(([k, v], i) => {
      const name = names ? names[i]! : k;
      if (name === DROP) return;
      const r = share && k === share.field && typeof v === 'string' ? (share.dropped ? DROP : share.text) : walk(v, [...path, k], plan, counts, fields, joined);
      if (r !== DROP) out[name] = r;
    });
    return out;
  }
  return value;
}

/** True when pattern `f` matches `path` or a prefix of it. */
function covers(f: readonly Segment[], path: readonly Segment[], fi = 0, pi = 0): boolean {
  if (fi === f.length) return true;
  const seg = f[fi]!;
  if (seg === '**') {
    for (let k = pi; k <= path.length; k++) if (covers(f, path, fi + 1, k)) return true;
    return false;
  }
  if (pi === path.length) return false;
  const p = path[pi]!;
  if (seg === p || (seg === '*' && p !== '[]')) return covers(f, path, fi + 1, pi + 1);
  return false;
}

/**
 * Masks a whole JSON document given as text, in place (json-text-masker.ts: numbers,
 * whitespace and escapes kept), or JSON Lines line by line; a body that is neither is
 * masked as text.
 */
export function maskJsonText(body: string, plan: MaskPlan, counts: EntityCounts): string {
  try {
    return maskJsonSource(body, plan, counts) ?? 'null';
  } catch (error) {
    // A masking failure, not text that is no JSON: masked as text, it could let a split value through.
    if (isGatehouseError(error)) throw error;
    return maskJsonLines(body, plan, counts) ?? applyFindings(body, plan.find(body), counts);
  }
}

/**
 * JSON Lines (a JSONL file, NDJSON: every line that is not blank an object or array),
 * each line masked as JSON — as text, `ann\u0040example.com` went out unmasked; undefined
 * when the body is not JSON Lines.
 */
function maskJsonLines(body: string, plan: MaskPlan, counts: EntityCounts): string | undefined {
  if (!body.includes('\n')) return undefined;
  const found: EntityCounts = {};
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const first = line.trimStart().charCodeAt(0);
    if (Number.isNaN(first)) continue;
    if (first !== 0x7b && first !== 0x5b) return undefined;
    const cr = line.endsWith('\r');
    try {
      lines[i] = (maskJsonSource(cr ? line.slice(0, -1) : line, plan, found) ?? 'null') + (cr ? '\r' : '');
    } catch (error) {
      if (isGatehouseError(error)) throw error;
      return undefined;
    }
  }
  addCounts(counts, found);
  return lines.join('\n');
}
