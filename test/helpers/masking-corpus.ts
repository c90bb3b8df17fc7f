// Reads the labelled masking corpus (test/fixtures/masking-corpus.txt) and scores a
// detector on it per entity type: a finding counts as a true positive only when its
// type and exact span match a label.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Detection } from '../../src/detect/index.js';
import { applyFindings, type MaskPlan } from '../../src/mask/index.js';

export interface CorpusSample {
  readonly line: number;
  readonly text: string;
  readonly labels: readonly { type: string; start: number; end: number; value: string }[];
}

export const corpusPath = fileURLToPath(new URL('../fixtures/masking-corpus.txt', import.meta.url));

export function loadCorpus(path = corpusPath): CorpusSample[] {
  const samples: CorpusSample[] = [];
  readFileSync(path, 'utf8').split('\n').forEach((raw, i) => {
    if (raw.trim() === '' || raw.startsWith('#')) return;
    const line = raw.replace(/\\n/g, '\n');
    let text = '';
    const labels: { type: string; start: number; end: number; value: string }[] = [];
    const mark = /\{\{([A-Z_]+):([\s\S]*?)\}\}/g;
    let at = 0;
    for (let m = mark.exec(line); m; m = mark.exec(line)) {
      text += line.slice(at, m.index);
      labels.push({ type: m[1]!, start: text.length, end: text.length + m[2]!.length, value: m[2]! });
      text += m[2];
      at = m.index + m[0].length;
    }
    text += line.slice(at);
    samples.push({ line: i + 1, text, labels });
  });
  return samples;
}

export interface EntityScore {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
}

export interface CorpusScore {
  readonly byType: Record<string, EntityScore>;
  readonly errors: string[];
}

export function scoreCorpus(samples: readonly CorpusSample[], detect: (text: string) => Detection[]): CorpusScore {
  const byType: Record<string, EntityScore> = {};
  const errors: string[] = [];
  const entry = (type: string) => (byType[type] ??= { tp: 0, fp: 0, fn: 0, precision: 1, recall: 1 });
  for (const sample of samples) {
    const found = detect(sample.text);
    const matched = new Set<number>();
    for (const d of found) {
      const hit = sample.labels.findIndex((l, k) => !matched.has(k) && l.type === d.type && l.start === d.start && l.end === d.end);
      if (hit >= 0) {
        matched.add(hit);
        entry(d.type).tp++;
      } else {
        entry(d.type).fp++;
        errors.push(`line ${sample.line}: unexpected ${d.type} ${JSON.stringify(sample.text.slice(d.start, d.end))}`);
      }
    }
    sample.labels.forEach((l, k) => {
      if (matched.has(k)) return;
      entry(l.type).fn++;
      errors.push(`line ${sample.line}: missed ${l.type} ${JSON.stringify(l.value)}`);
    });
  }
  for (const s of Object.values(byType)) {
    s.precision = s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp);
    s.recall = s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn);
  }
  return { byType, errors };
}

/**
 * Every labelled value of every third labelled sample of the corpus (each entity type is
 * there), split at every offset inside it, with what masking the whole text with `plan` gives.
 */
export function* corpusSplits(plan: MaskPlan): Generator<{ line: number; text: string; type: string; value: string; cut: number; expected: string }> {
  const samples = loadCorpus().filter((s) => s.labels.length > 0);
  for (const [i, sample] of samples.entries()) {
    if (i % 3 !== 0) continue;
    const expected = applyFindings(sample.text, plan.find(sample.text), {});
    for (const label of sample.labels) {
      for (let cut = label.start + 1; cut < label.end; cut++) yield { line: sample.line, text: sample.text, type: label.type, value: label.value, cut, expected };
    }
  }
}
