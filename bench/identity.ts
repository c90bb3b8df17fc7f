// `npm run bench:identity`: what the identify stage costs per request, in-process.
//
// Baseline in the same run: an identify stage that does nothing (returns a constant
// identity) — the difference is the authentication cost. Measured, each call timed on
// its own with performance.now() (its ~0.1 µs overhead is in every row, the baseline too):
//   api-key (cached)      a ghk_ key, record in the 1 s verify cache
//   oidc (cache hit)      an RS256 IdP token already verified once: hash + map lookup
//   oidc (cache miss)     an RS256 IdP token verified from scratch with a cached JWKS
// The IdP is a real issuer on 127.0.0.1 (discovery + JWKS); the store is SQLite.
// Floor: p50 of "oidc (cache hit)" minus baseline p50 < 50 µs (prints PASS/FAIL).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildConfigSchema } from '../src/config/schema.js';
import type { Identity } from '../src/exchange/index.js';
import { apiKeyAuthenticator, ApiKeyService, identifyCaller, jwtAuthenticator, OidcIssuer, RevocationService, VerifiedTokenCache } from '../src/identity/index.js';
import { openStore } from '../src/store/index.js';
import { startTestIssuer } from '../test/helpers/test-issuer.js';

const iterations = Number(process.env.BENCH_IDENTITY_ITERATIONS ?? 20_000);

async function measure(name: string, fn: () => Promise<unknown>, n = iterations): Promise<{ name: string; p50: number; p99: number; mean: number }> {
  for (let i = 0; i < Math.min(2000, n); i++) await fn();
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples[i] = (performance.now() - t) * 1000;
  }
  samples.sort();
  const mean = samples.reduce((a, b) => a + b, 0) / n;
  return { name, p50: samples[Math.floor(n * 0.5)]!, p99: samples[Math.floor(n * 0.99)]!, mean };
}

const dir = await mkdtemp(join(tmpdir(), 'gatehouse-bench-identity-'));
const store = await openStore({ sqlite: { path: join(dir, 'gatehouse.db') } });
const idp = await startTestIssuer();
try {
  const config = buildConfigSchema({ env: {}, baseDir: dir }).parse({
    identity: { oidc: { issuers: [{ name: 'corp', issuer: idp.issuer, audience: 'gatehouse', groupsClaims: ['groups'] }] } },
  }).identity;
  const keys = new ApiKeyService(store.db);
  const { token: apiKey } = await keys.create({ name: 'bench', kind: 'service', groups: ['ml'], expiresAt: null });
  const issuers = config.oidc.issuers.map((i) => new OidcIssuer(i, { clockSkewMs: config.oidc.clockSkew }));
  const cache = new VerifiedTokenCache({ maxEntries: 10_000, ttlMs: 300_000 });
  // the real revocation check, with revocations loaded (one for another subject)
  const revocations = new RevocationService(store.db);
  await revocations.revoke({ kind: 'subject', value: 'oidc:corp:mallory' });
  const identify = identifyCaller([apiKeyAuthenticator(keys), jwtAuthenticator(issuers, cache)], { checkRevoked: (identity) => revocations.check(identity) });
  const noCache = identifyCaller([jwtAuthenticator(issuers, new VerifiedTokenCache({ maxEntries: 0, ttlMs: 0 }))]);
  const jwt = await idp.sign({ sub: 'alice', aud: 'gatehouse', groups: ['ml', 'ops'], exp: Math.floor(Date.now() / 1000) + 3600 });
  const constant: Identity = { subject: 'x', kind: 'service', groups: [], method: 'api_key', credentialId: 'x' };
  const baselineFn = async (_token: string | undefined) => constant;

  const rows = [
    await measure('baseline (no-op identify)', () => baselineFn(jwt)),
    await measure('api-key (cached)', () => identify(apiKey)),
    await measure('oidc (cache hit)', () => identify(jwt)),
    await measure('oidc (cache miss, JWKS cached)', () => noCache(jwt), Math.min(iterations, 5000)),
  ];
  const base = rows[0]!.p50;
  console.log(`identify stage, ${iterations} calls per row (node ${process.version}, ${process.platform}/${process.arch})`);
  console.log('case                              p50 µs    p99 µs   mean µs   p50 added µs');
  for (const r of rows) console.log(`${r.name.padEnd(32)} ${r.p50.toFixed(2).padStart(8)} ${r.p99.toFixed(2).padStart(9)} ${r.mean.toFixed(2).padStart(9)} ${(r.p50 - base).toFixed(2).padStart(13)}`);
  const added = rows[2]!.p50 - base;
  console.log(`floor: oidc cache-hit p50 added ${added.toFixed(2)} µs < 50 µs: ${added < 50 ? 'PASS' : 'FAIL'}`);
} finally {
  await idp.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
}
