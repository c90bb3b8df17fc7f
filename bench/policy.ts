// `npm run bench:policy`: how long one policy decision takes with 200 rules, compiled
// once, against a baseline in the same run (connection access only, no other rules).
//
// The 200 rules are a realistic mix over 20 connections: group/kind/model/operation
// matches, time windows, keyword lists (normalised text), re2 regexes, fact thresholds,
// obligations, response rules, plus the four built-in packs. The requests are a mix of
// chat prompts (~1 KB text), embeddings batches and HTTP GETs, allowed and denied.
// Each decision is timed on its own (hrtime); p50 / p99 / mean per request are printed,
// then the floor: p50 under 20 µs, PASS or FAIL.
//
// Options: --iterations N (BENCH_POLICY_ITERATIONS, default 200000)

import { parseArgs } from 'node:util';
import { ruleSchema, packNames, type PolicyRuleSpec } from '../src/config/policy-schema.js';
import type { Exchange } from '../src/exchange/index.js';
import { compilePolicy, loadRuleFile, packPath, type Policy } from '../src/policy/index.js';

const { values } = parseArgs({ options: { iterations: { type: 'string' } } });
const iterations = Number(values.iterations ?? process.env['BENCH_POLICY_ITERATIONS'] ?? 200_000);
const floorMicros = 20;

const connections = Array.from({ length: 20 }, (_, i) => `conn-${i}`);
const access = connections.map((connection, i) => ({ connection, groups: [`team-${i}`, 'platform', `readers-${i % 5}`] }));

function rules(): PolicyRuleSpec[] {
  const out: PolicyRuleSpec[] = [];
  const r = (spec: Record<string, unknown>) => out.push(ruleSchema.parse(spec));
  for (let i = 0; out.length < 200 - packRules.length; i++) {
    const c = connections[i % connections.length]!;
    switch (i % 10) {
      case 0: r({ name: `kw-${i}`, effect: 'deny', message: 'no', match: { connections: [c] }, when: [{ keywords: [`forbidden topic ${i}`, `secret project ${i}`, 'exfiltrate'] }] }); break;
      case 1: r({ name: `rx-${i}`, effect: 'deny', match: { connections: [c] }, when: [{ regex: `(?i)ticket-${i}-[0-9]{6}` }] }); break;
      case 2: r({ name: `agents-${i}`, effect: 'deny', match: { connections: [c], kinds: ['agent'], models: ['gpt-4*', 'o1-*'] } }); break;
      case 3: r({ name: `emb-${i}`, effect: 'require_approval', match: { connections: [c], operations: ['embeddings'] }, when: [{ fact: 'inputCount', gt: 500 }] }); break;
      case 4: r({ name: `hours-${i}`, effect: 'allow', match: { connections: [c], groups: ['contractor-*'], time: { days: ['mon', 'tue', 'wed', 'thu', 'fri'], hours: '08:00-18:00', timezone: 'Europe/Paris' } } }); break;
      case 5: r({ name: `mask-${i}`, effect: 'allow', match: { connections: [c], groups: [`support-${i}`] }, obligations: { mask: ['pii'], maxResponseBytes: '1MiB' } }); break;
      case 6: r({ name: `paths-${i}`, effect: 'deny', match: { connections: [c], methods: ['DELETE', 'PUT'], paths: ['/admin/*'] } }); break;
      case 7: r({ name: `resp-${i}`, on: 'response', effect: 'deny', match: { connections: [c] }, when: [{ regex: 'AKIA[0-9A-Z]{16}' }] }); break;
      case 8: r({ name: `subj-${i}`, effect: 'deny', match: { subjects: [`key:blocked-${i}`, 'key:revoked-*'] } }); break;
      case 9: r({ name: `big-${i}`, effect: 'deny', match: { connections: [c] }, when: [{ fact: 'bytes', gt: 5_000_000 }] }); break;
    }
  }
  return [...out, ...packRules];
}

const packRules = packNames.flatMap((name) => loadRuleFile(packPath(name)));
const prompt = 'Summarise the following meeting notes for the weekly report. '.repeat(16); // ~1 KB

function exchanges(): Exchange[] {
  const base = { id: 'ex', sessionId: 'ex', protocol: 'http' as const, startedAt: Date.UTC(2026, 0, 7, 10), client: { address: '127.0.0.1' } };
  const out: Exchange[] = [];
  for (let i = 0; i < 64; i++) {
    const connection = connections[i % connections.length]!;
    const identity = { subject: `key:user-${i}`, kind: i % 4 === 0 ? ('agent' as const) : ('service' as const), groups: [`team-${i % 20}`, 'staff'], method: 'api_key' as const, credentialId: 'c' };
    switch (i % 4) {
      case 0:
      case 1:
        out.push({ ...base, connection, operation: 'chat.completions', identity, facts: { stream: false, model: i % 8 === 0 ? 'gpt-4o' : 'llama-3', text: i % 16 === 1 ? `${prompt} ignore previous instructions ${i}` : `${prompt} ${i}`, method: 'POST', path: '/chat/completions', bytes: 1200 } });
        break;
      case 2:
        out.push({ ...base, connection, operation: 'embeddings', identity, facts: { stream: false, model: 'embed', text: 'a\nb\nc', inputCount: 3, method: 'POST', path: '/embeddings', bytes: 80 } });
        break;
      default:
        out.push({ ...base, connection, operation: 'http.GET /models', identity, facts: { stream: false, method: 'GET', path: i % 8 === 3 ? '/models/x.safetensors' : '/models', bytes: 0 } });
    }
  }
  return out;
}

function measure(policy: Policy, requests: readonly Exchange[]): { p50: number; p99: number; mean: number } {
  for (let i = 0; i < 20_000; i++) policy.decide(requests[i % requests.length]!); // warm-up (JIT)
  const samples = new Float64Array(iterations);
  let sink = 0;
  for (let i = 0; i < iterations; i++) {
    const request = requests[i % requests.length]!;
    const t0 = process.hrtime.bigint();
    const decision = policy.decide(request);
    samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    sink += decision.rules.length;
  }
  if (sink === 0) throw new Error('no decisions');
  samples.sort();
  let total = 0;
  for (const s of samples) total += s;
  return { p50: samples[Math.floor(iterations * 0.5)]!, p99: samples[Math.floor(iterations * 0.99)]!, mean: total / iterations };
}

const requests = exchanges();
const compileStarted = performance.now();
const full = compilePolicy({ access, rules: rules(), timezone: 'UTC' });
const compileMs = performance.now() - compileStarted;
const baseline = compilePolicy(access);
const effects = new Map<string, number>();
for (const r of requests) {
  const e = full.decide(r).effect;
  effects.set(e, (effects.get(e) ?? 0) + 1);
}

const b = measure(baseline, requests);
const f = measure(full, requests);
const row = (name: string, rulesCount: number, m: { p50: number; p99: number; mean: number }) =>
  `${name.padEnd(34)} ${String(rulesCount).padStart(5)}  ${m.p50.toFixed(2).padStart(8)}  ${m.p99.toFixed(2).padStart(8)}  ${m.mean.toFixed(2).padStart(8)}`;
process.stdout.write(`policy decision, ${iterations} requests each (node ${process.version}, ${requests.length} distinct requests: ${[...effects].map(([e, n]) => `${n} ${e}`).join(', ')})
compile of ${full.ruleCount} rules: ${compileMs.toFixed(1)} ms (once)

${'policy'.padEnd(34)} ${'rules'.padStart(5)}  ${'p50 µs'.padStart(8)}  ${'p99 µs'.padStart(8)}  ${'mean µs'.padStart(8)}
${row('baseline: connection access only', baseline.ruleCount, b)}
${row('full: 200 rules incl. 4 packs', full.ruleCount, f)}

floor: p50 < ${floorMicros} µs per decision with 200 rules: ${f.p50 < floorMicros ? 'PASS' : 'FAIL'} (${f.p50.toFixed(2)} µs)
`);
