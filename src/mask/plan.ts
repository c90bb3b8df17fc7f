// A masking plan: the profiles that apply to one exchange (connection defaults plus
// the decision's `obligations.mask`), compiled once per distinct set of names.
// When two profiles cover the same entity type, the stronger operator wins
// (drop > redact > hash > partial), so adding a profile never weakens masking.

import { createDetector, type Detection, type Detector, type DetectorOptions } from '../detect/index.js';
import { disguiseView, viewOffset } from './disguise-view.js';
import { profileTypes } from './mask-labels.js';

export type MaskOperator = 'redact' | 'partial' | 'hash' | 'drop';
export type ApplyTo = 'response' | 'request' | 'both';

export interface EmbeddingsRule {
  readonly mode: 'block' | 'round' | 'float16' | 'noise';
  readonly decimals: number;
  /** Relative noise: the added vector's norm as a fraction of the embedding's norm. */
  readonly noise: number;
}

export interface MaskProfile extends DetectorOptions {
  readonly name: string;
  /** Entity types this profile masks; undefined = every type its detector reports. */
  readonly entities?: readonly string[] | undefined;
  readonly operator: MaskOperator;
  readonly keepLast: number;
  /** Resolved HMAC key (required for `hash`). */
  readonly hashKey?: string | undefined;
  /** JSON field paths to restrict masking to (`choices[].message.content`, `user.*`). */
  readonly fields?: readonly string[] | undefined;
  readonly applyTo: ApplyTo;
  readonly embeddings?: EmbeddingsRule | undefined;
}

export interface Finding extends Detection {
  readonly operator: MaskOperator;
  readonly keepLast: number;
  readonly hashKey: string | undefined;
}

/** The masking side of one exchange, for one direction. */
export interface MaskPlan {
  readonly profiles: readonly string[];
  /** Findings in `text`, each with the operator that applies to it. */
  find(text: string): Finding[];
  /** See Detector.holdBack: where the end of `text` must be held back (`from`: already released before it). */
  holdBack(text: string, from?: number): number;
  readonly fields: readonly string[] | undefined;
  readonly embeddings: EmbeddingsRule | undefined;
  /**
   * Set when several profiles mask text and one of them has `fields`: each profile's own
   * `fields` (undefined: every field), and the plan of those of them (by index) that
   * cover a JSON value, so a profile's fields restrict that profile, not the others.
   */
  readonly scoped?: { readonly fields: readonly (readonly string[] | undefined)[]; narrow(indices: readonly number[]): MaskPlan } | undefined;
  /** The entity types its profiles mask in text, whose labels it writes (mask-labels.ts). */
  readonly types?: ReadonlySet<string> | undefined;
}

const strength: Record<MaskOperator, number> = { partial: 1, hash: 2, redact: 3, drop: 4 };
const embeddingStrength = { noise: 1, float16: 2, round: 2, block: 3 } as const;

interface CompiledProfile {
  readonly profile: MaskProfile;
  readonly detector: Detector;
  readonly entities: ReadonlySet<string> | undefined;
}

export class MaskPlanner {
  readonly #profiles = new Map<string, CompiledProfile>();
  readonly #plans = new Map<string, MaskPlan | undefined>();

  constructor(profiles: readonly MaskProfile[]) {
    for (const profile of profiles) {
      this.#profiles.set(profile.name, { profile, detector: createDetector(profile), entities: profile.entities ? new Set(profile.entities) : undefined });
    }
  }

  has(name: string): boolean {
    return this.#profiles.has(name);
  }

  /** The plan for these profile names in one direction, or undefined when nothing applies. Throws on an unknown name. */
  plan(names: readonly string[], direction: 'request' | 'response'): MaskPlan | undefined {
    const unique = [...new Set(names)].sort();
    const key = `${direction}:${unique.join(',')}`;
    if (this.#plans.has(key)) return this.#plans.get(key);
    const selected: CompiledProfile[] = [];
    for (const name of unique) {
      const compiled = this.#profiles.get(name);
      if (!compiled) throw new Error(`unknown masking profile "${name}"`);
      if (compiled.profile.applyTo === direction || compiled.profile.applyTo === 'both') selected.push(compiled);
    }
    const plan = selected.length === 0 ? undefined : buildPlan(selected);
    this.#plans.set(key, plan);
    return plan;
  }
}

function buildPlan(selected: readonly CompiledProfile[]): MaskPlan {
  // A profile with `entities: []` masks no text (it is there for embeddings): no detection,
  // no hold-back, and its lack of `fields` does not widen the others'.
  const textual = selected.filter((c) => c.entities === undefined || c.entities.size > 0);
  const anyUnrestricted = textual.some((c) => c.profile.fields === undefined);
  const fields = anyUnrestricted ? undefined : textual.flatMap((c) => c.profile.fields ?? []);
  let embeddings: EmbeddingsRule | undefined;
  for (const c of selected) {
    const rule = c.profile.embeddings;
    if (rule && (!embeddings || embeddingStrength[rule.mode] > embeddingStrength[embeddings.mode])) embeddings = rule;
  }
  const detectors = [...new Set(textual.map((c) => c.detector))];
  const narrowed = new Map<string, MaskPlan>();
  const scoped =
    textual.length > 1 && textual.some((c) => c.profile.fields !== undefined)
      ? {
          fields: textual.map((c) => c.profile.fields),
          narrow(indices: readonly number[]): MaskPlan {
            const key = indices.join(',');
            let plan = narrowed.get(key);
            if (!plan) narrowed.set(key, (plan = buildPlan(indices.map((i) => textual[i]!))));
            return plan;
          },
        }
      : undefined;
  return {
    profiles: selected.map((c) => c.profile.name),
    types: new Set(textual.flatMap((c) => profileTypes(c.profile))),
    fields,
    embeddings,
    scoped,
    holdBack(text, from) {
      let p = text.length;
      for (const d of detectors) p = Math.min(p, d.holdBack(text, from));
      // Held as the view needs too: `ann\u200b` or `ann&#6` at the end is a word that may go on.
      const view = disguiseView(text, true);
      if (view) {
        const viewFrom = from === undefined ? undefined : viewOffset(view, from);
        let v = view.text.length;
        for (const d of detectors) v = Math.min(v, d.holdBack(view.text, viewFrom));
        if (v < view.text.length) p = Math.min(p, view.starts[v]!);
      }
      return p;
    },
    find(text) {
      if (textual.length === 0) return [];
      const own = findIn(text);
      const view = disguiseView(text);
      if (!view) return own;
      // What the view finds, in the text's own offsets, joined with what the text shows.
      const seen = findIn(view.text);
      if (seen.length === 0) return own;
      return mergeFindings([...own, ...seen.map((f) => ({ ...f, start: view.starts[f.start]!, end: view.ends[f.end - 1]! }))]);
    },
  };

  function findIn(text: string): Finding[] {
    if (textual.length === 1) {
      // One profile: the detector's findings are already sorted and disjoint.
      const c = textual[0]!;
      const out: Finding[] = [];
      for (const d of c.detector.detect(text)) {
        if (c.entities && !c.entities.has(d.type)) continue;
        out.push({ type: d.type, start: d.start, end: d.end, score: d.score, operator: c.profile.operator, keepLast: c.profile.keepLast, hashKey: c.profile.hashKey });
      }
      return out;
    }
    const byType = new Map<string, Finding>();
    const all: Finding[] = [];
    for (const c of textual) {
      for (const d of c.detector.detect(text)) {
        if (c.entities && !c.entities.has(d.type)) continue;
        const finding: Finding = { ...d, operator: c.profile.operator, keepLast: c.profile.keepLast, hashKey: c.profile.hashKey };
        const key = `${d.start}:${d.end}`;
        const prior = byType.get(key);
        if (prior && strength[prior.operator] >= strength[finding.operator]) continue;
        byType.set(key, finding);
      }
    }
    for (const f of byType.values()) all.push(f);
    return mergeFindings(all);
  }
}

/** Findings sorted, overlaps joined: each union covered by the stronger operator. */
function mergeFindings(all: Finding[]): Finding[] {
  if (all.length <= 1) return all;
  all.sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  for (const f of all) {
    const last = out[out.length - 1];
    if (last && f.start < last.end) {
      out[out.length - 1] = { ...(strength[f.operator] > strength[last.operator] ? f : last), start: last.start, end: Math.max(last.end, f.end) };
      continue;
    }
    out.push(f);
  }
  return out;
}
