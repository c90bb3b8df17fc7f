// A/B of `bench:mask`'s throughput figures between builds: the same mixed text as
// bench/mask.ts, `detectEntities` and the redacted copy (detect + redact + build),
// timed for each build's dist/ in one process, the builds alternated run by run (the
// order reversed every other round), per CPU-second. Prints the medians and the
// median of the per-round ratios to the first build; a paired ratio stays usable on a
// machine other work is loading. Each build also has its findings on the text
// compared with the first build's (they must be the same).
//
//   npm run build && cp -r dist /tmp/old/dist      # before a change
//   node --import tsx bench/mask-ab.ts --dist /tmp/old/dist --dist dist --rounds 15 [--reps 3]

import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadCorpus } from '../test/helpers/masking-corpus.js';

const argv = process.argv.slice(2);
const flag = (name: string): string[] => argv.flatMap((arg, i) => (arg === name && argv[i + 1] !== undefined ? [argv[i + 1]!] : []));
const dists = flag('--dist').length > 0 ? flag('--dist') : ['dist'];
const rounds = Number(flag('--rounds')[0] ?? 15);
/** Calls per timed sample: longer samples average out other work's bursts on a shared machine. */
const reps = Number(flag('--reps')[0] ?? 3);

interface Build {
  readonly name: string;
  readonly detect: (text: string) => { type: string; start: number; end: number }[];
  readonly masked: (text: string) => number;
}

const builds: Build[] = [];
for (const dir of dists) {
  const url = (p: string) => pathToFileURL(resolve(dir, p)).href;
  const detectMod = (await import(url('detect/index.js'))) as { detectEntities: Build['detect'] };
  const maskMod = (await import(url('mask/index.js'))) as {
    MaskPlanner: new (p: unknown[]) => { plan(n: string[], d: string): { find(t: string): unknown[] } };
    applyFindings(text: string, findings: unknown[], counts: Record<string, number>): string;
  };
  const plan = new maskMod.MaskPlanner([{ name: 'all', operator: 'redact', keepLast: 4, applyTo: 'response' }]).plan(['all'], 'response');
  builds.push({ name: dir, detect: detectMod.detectEntities, masked: (t) => maskMod.applyFindings(t, plan.find(t), {}).length });
}

// The text of bench/mask.ts.
const corpus = loadCorpus();
const prose = 'The quarterly review covered revenue growth, hiring plans and the migration of the billing service to the new cluster. Action items were assigned to each team, with follow-ups scheduled for next week. ';
const parts: string[] = [];
let size = 0;
for (let k = 0; size < 16 * 1024 * 1024; k++) {
  const piece = k % 3 === 0 ? corpus[k % corpus.length]!.text + ' ' : prose;
  parts.push(piece);
  size += piece.length;
}
const mixed = parts.join('');
const mb = Buffer.byteLength(mixed) / 1e6;

// Same findings, and same masked copy length, in every build.
const ref = JSON.stringify(builds[0]!.detect(mixed));
for (const b of builds) {
  if (JSON.stringify(b.detect(mixed)) !== ref) throw new Error(`${b.name}: findings differ from ${builds[0]!.name}`);
  if (b.masked(mixed) !== builds[0]!.masked(mixed)) throw new Error(`${b.name}: masked copy differs`);
}
for (const b of builds) for (let i = 0; i < 3; i++) (b.detect(mixed), b.masked(mixed));

function cpuRate(fn: () => unknown): number {
  const c = process.cpuUsage();
  for (let i = 0; i < reps; i++) fn();
  const d = process.cpuUsage(c);
  return (reps * mb) / ((d.user + d.system) / 1e6);
}

const measures = ['detect', 'masked'] as const;
const results = builds.map(() => ({ detect: [] as number[], masked: [] as number[] }));
for (let r = 0; r < rounds; r++) {
  const order = builds.map((_, i) => i);
  if (r % 2 === 1) order.reverse();
  for (const m of measures) for (const i of order) results[i]![m].push(cpuRate(() => builds[i]![m](mixed)));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`${mb.toFixed(1)} MB mixed text, ${rounds} rounds of ${reps} calls per build and measure, MB per CPU-second (median), ratio to ${builds[0]!.name} (median of per-round ratios)`);
for (const m of measures) {
  for (let i = 0; i < builds.length; i++) {
    const ratios = results[i]![m].map((x, r) => x / results[0]![m][r]!);
    console.log(`  ${m.padEnd(7)} ${builds[i]!.name.padEnd(24)} ${median(results[i]![m]).toFixed(1).padStart(7)}  ×${median(ratios).toFixed(3)}  (ratios ${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`);
  }
}
