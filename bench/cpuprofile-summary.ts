// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time,
// and total (inclusive) time per source file, counting each sample once per file.
//
//   node --import tsx bench/cpuprofile-summary.ts PROFILE.cpuprofile [TOP]

import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame; children?: number[] }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number }

const [file, topArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node --import tsx bench/cpuprofile-summary.ts PROFILE.cpuprofile [TOP]\n');
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;

const byId = new Map<number, ProfileNode>();
const parent = new Map<number, number>();
for (const node of profile.nodes) {
  byId.set(node.id, node);
  for (const child of node.children ?? []) parent.set(child, node.id);
}

const shortUrl = (url: string): string => {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
};
const frameName = (f: CallFrame): string => `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;

const self = new Map<string, number>();
const inclusive = new Map<string, number>();
const perFile = new Map<string, number>();
const perPackage = new Map<string, number>();
// Self time per package, native leaf frames (writev, GC excluded) charged to their
// nearest JavaScript caller: a partition of busy time that sums to 100 %.
const selfPackage = new Map<string, number>();
const packageOf = (s: string): string => (s.startsWith('dist/') ? s.split('/').slice(0, 3).join('/') : s.startsWith('node:') ? 'node:(core)' : s.split('/')[0]!);
let total = 0;
let idle = 0;
profile.samples.forEach((id, i) => {
  const dt = profile.timeDeltas[i] ?? 0;
  total += dt;
  const node = byId.get(id)!;
  if (node.callFrame.functionName === '(idle)') idle += dt;
  const name = frameName(node.callFrame);
  if (node.callFrame.functionName !== '(idle)') {
    let owner = '(native: ' + (node.callFrame.functionName || '?') + ')';
    if (!node.callFrame.functionName.startsWith('(')) {
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const url = byId.get(cur)!.callFrame.url;
        if (url) { owner = packageOf(shortUrl(url)); break; }
      }
    }
    selfPackage.set(owner, (selfPackage.get(owner) ?? 0) + dt);
  }
  self.set(name, (self.get(name) ?? 0) + dt);
  const files = new Set<string>();
  const packages = new Set<string>();
  const functions = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const frame = byId.get(cur)!.callFrame;
    const url = frame.url;
    if (url || frame.functionName.startsWith('(')) functions.add(frameName(frame));
    if (!url) continue;
    const s = shortUrl(url);
    files.add(s);
    packages.add(packageOf(s));
  }
  for (const f of functions) inclusive.set(f, (inclusive.get(f) ?? 0) + dt);
  for (const f of files) perFile.set(f, (perFile.get(f) ?? 0) + dt);
  for (const p of packages) perPackage.set(p, (perPackage.get(p) ?? 0) + dt);
});

// Percentages are of BUSY time (samples that were not idle): in the bench the gateway
// sits idle while the direct runs go on, which would otherwise dilute every number.
const busy = total - idle;
const pct = (v: number) => `${((100 * v) / busy).toFixed(1).padStart(5)} %`;
self.delete('(idle) (native)');
inclusive.delete('(idle) (native)');
process.stdout.write(`profile ${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy; percentages below are of busy time\n\n`);
const print = (title: string, map: Map<string, number>, n: number) => {
  process.stdout.write(`${title}\n`);
  for (const [name, v] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n)) process.stdout.write(`  ${pct(v)}  ${name}\n`);
  process.stdout.write('\n');
};
print(`top ${top} functions by self time`, self, top);
print('self time by package (native calls charged to their JS caller; sums to 100 %)', selfPackage, top);
print(`top ${top} functions by inclusive time`, inclusive, top);
print('inclusive time by package / gateway module', perPackage, top);
print('inclusive time by file', perFile, top);
