// End to end: Gatehouse tokens (POST /auth/token) through the real gateway process with
// the openai client — scope enforced per connection and operation, JWKS published,
// the generated signing key file private — and revocation of a token by its jti.

import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify } from 'jose';
import OpenAI from 'openai';
import pg from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-gwtok';

describe('Gatehouse tokens, end to end', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let apiKey: string;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    const second = `  - name: other
    type: openai
    target: ${upstream.url}
    credential:
      secret: \${UPSTREAM_KEY}
    access: { groups: [ml] }
  - name: warehouse
    type: postgres
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    target: postgres://127.0.0.1:5432/postgres
    credential: { user: postgres, secret: "\${PG_SECRET}" }
    tls: { mode: disable }
    access: { groups: [ml] }
identity:
  gatewayTokens: { defaultTtl: 10m, maxTtl: 30m }
approvals:
  defaults: { reviewers: [reviewers], holdFor: 200ms }
policy:
  rules:
    - name: hold-marked-prompts
      effect: require_approval
      when:
        - keywords: [HOLD-FOR-REVIEW]
`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, second), { env: { UPSTREAM_KEY: upstreamKey, PG_SECRET: 'trust-auth-ignores-it' } });
    apiKey = await gateway.createKey('ml-agent', ['ml'], ['--kind', 'agent']);
    adminKey = await gateway.createKey('admin', ['admins']);
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  const exchange = (credential: string, body: unknown) =>
    fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const client = (token: string, connection = 'demo') => new OpenAI({ baseURL: `${gateway.url}/c/${connection}`, apiKey: token, maxRetries: 0 });
  const chat = (token: string, connection = 'demo') => client(token, connection).chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
  const errorCode = (error: unknown) => (error as { error?: { code?: string } }).error?.code;

  test('an API key is exchanged for a short-lived EdDSA token that works with the openai client', async () => {
    const issuedBefore = Date.now();
    const res = await exchange(apiKey, { connections: ['demo'], operations: ['chat.completions'] });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = (await res.json()) as { access_token: string; token_type: string; expires_in: number; jti: string; scope: unknown };
    assert.equal(body.token_type, 'Bearer');
    // exactly the TTL asked for (the default, 10m), and the token's exp is no earlier
    assert.equal(body.expires_in, 600);
    assert.deepEqual(body.scope, { connections: ['demo'], operations: ['chat.completions'] });

    // verifiable by anyone with the published JWKS
    const jwks = (await (await fetch(`${gateway.url}/.well-known/jwks.json`)).json()) as { keys: Array<Record<string, string>> };
    const header = decodeProtectedHeader(body.access_token);
    assert.equal(header.alg, 'EdDSA');
    const jwk = jwks.keys.find((k) => k['kid'] === header.kid);
    assert.ok(jwk, 'the signing key is published');
    assert.equal(jwk['d'], undefined, 'no private part in the JWKS');
    const { payload } = await jwtVerify(body.access_token, await importJWK(jwk, 'EdDSA'), { audience: 'gatehouse' });
    assert.equal(payload.sub, 'key:ml-agent');
    assert.equal(payload.jti, body.jti);
    assert.ok(payload.exp! * 1000 >= issuedBefore + 600_000, 'the token lives at least expires_in');

    const answer = await chat(body.access_token);
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: hi');
  });

  test('a token used outside its scope is token_scope_denied (403) with a clear message', async () => {
    const { access_token: token } = (await (await exchange(apiKey, { connections: ['demo'], operations: ['chat.completions'] })).json()) as { access_token: string };
    await assert.rejects(chat(token, 'other'), (error: unknown) => {
      assert.ok(error instanceof OpenAI.PermissionDeniedError);
      assert.equal(errorCode(error), 'token_scope_denied');
      assert.match((error as Error).message, /This token is scoped to connection\(s\) demo; it cannot be used on "other"\./);
      return true;
    });
    await assert.rejects(client(token).embeddings.create({ model: 'demo-embed', input: 'x' }), (error: unknown) => {
      assert.equal(errorCode(error), 'token_scope_denied');
      assert.match((error as Error).message, /scoped to operation\(s\) chat\.completions; it cannot be used for "embeddings"/);
      return true;
    });
  });

  test('security: a token scoped to another connection does not log in to a PostgreSQL listener (FATAL 42501 token_scope_denied)', async () => {
    const port = await gateway.postgresPort('warehouse');
    const { access_token: token } = (await (await exchange(apiKey, { connections: ['demo'] })).json()) as { access_token: string };
    const scoped = new pg.Client({ host: '127.0.0.1', port, user: 'ml-agent', password: token, database: 'warehouse' });
    scoped.on('error', () => undefined);
    await assert.rejects(scoped.connect(), (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.equal(error.message, 'This token is scoped to connection(s) demo; it cannot be used on "warehouse".');
      assert.equal(error.detail, 'gatehouse code: token_scope_denied');
      return true;
    });
    // The key it was exchanged for (no scope) gets past that check.
    const unscoped = new pg.Client({ host: '127.0.0.1', port, user: 'ml-agent', password: apiKey, database: 'warehouse' });
    unscoped.on('error', () => undefined);
    const login = await unscoped.connect().then(() => undefined, (error: pg.DatabaseError) => error);
    assert.notEqual(login?.detail, 'gatehouse code: token_scope_denied');
    await unscoped.end().catch(() => undefined);
  });

  test('a token scoped to a PostgreSQL connection and sql.select logs in and runs selects; any other statement is refused (42501) and the session goes on', async () => {
    const port = await gateway.postgresPort('warehouse');
    const res = await exchange(apiKey, { connections: ['warehouse'], operations: ['sql.select'], ttl: '5m' });
    assert.equal(res.status, 200, await res.clone().text());
    const { access_token: token } = (await res.json()) as { access_token: string };
    const db = new pg.Client({ host: '127.0.0.1', port, user: 'ml-agent', password: token, database: 'warehouse' });
    await db.connect();
    try {
      assert.deepEqual((await db.query('select 1 + 1 as two')).rows, [{ two: 2 }]);
      await assert.rejects(db.query('create temp table scratch (id int)'), (error: pg.DatabaseError) => {
        assert.equal(error.code, '42501');
        assert.match(error.message, /^This token is scoped to operation\(s\) sql\.select; it cannot be used for "sql\.ddl"\.$/);
        return true;
      });
      assert.deepEqual((await db.query({ text: 'select $1::int as n', values: [7] })).rows, [{ n: 7 }]);
    } finally {
      await db.end();
    }
  });

  test('a just-in-time token of an admin does not open the admin API', async () => {
    const { access_token: token } = (await (await exchange(adminKey, { connections: ['demo'] })).json()) as { access_token: string };
    const res = await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'token_scope_denied');
    assert.match(body.error.message, /cannot be used on the admin API/);
    assert.equal((await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${adminKey}` } })).status, 200);
  });

  test('invalid token requests are token_request_invalid (400)', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ connections: [] }, /"connections" must be a non-empty list/],
      [{ connections: ['nope'] }, /Unknown connection\(s\): "nope"/],
      [{ connections: ['demo'], ttl: '2h' }, /"ttl" may be at most 1800s/],
      [[1, 2], /must be a JSON object/],
    ];
    for (const [body, message] of cases) {
      const res = await exchange(apiKey, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      const json = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(json.error.code, 'token_request_invalid');
      assert.match(json.error.message, message);
    }
    const noAuth = await fetch(`${gateway.url}/auth/token`, { method: 'POST', body: '{}' });
    assert.equal(noAuth.status, 401);
  });

  test('a Gatehouse token cannot be exchanged for another', async () => {
    const { access_token: token } = (await (await exchange(apiKey, { connections: ['demo'] })).json()) as { access_token: string };
    const res = await exchange(token, { connections: ['demo'], ttl: '30m' });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /cannot be exchanged for another/);
  });

  test('revoking a token by jti refuses it on the next request; other tokens keep working', async () => {
    const a = (await (await exchange(apiKey, { connections: ['demo'] })).json()) as { access_token: string; jti: string };
    const b = (await (await exchange(apiKey, { connections: ['demo'] })).json()) as { access_token: string };
    await chat(a.access_token);
    const { stdout } = await gateway.cli(['revoke', 'token', a.jti, '--reason', 'test']);
    assert.match(stdout, new RegExp(`revoked token jti:${a.jti}`));
    await assertEventually(async () => {
      await assert.rejects(chat(a.access_token), (error: unknown) => errorCode(error) === 'credential_revoked');
    });
    await chat(b.access_token);
    const list = await fetch(`${gateway.adminUrl}/api/revocations`, { headers: { authorization: `Bearer ${adminKey}` } });
    const revocations = ((await list.json()) as { revocations: Array<{ kind: string; value: string; reason: string }> }).revocations;
    assert.deepEqual(revocations.map((r) => [r.kind, r.value, r.reason]), [['token', `jti:${a.jti}`, 'test']]);
  });

  test('a pasted token is revoked by its jti and never stored; a value that names nobody is refused', async () => {
    const a = (await (await exchange(apiKey, { connections: ['demo'] })).json()) as { access_token: string; jti: string };
    const { stdout } = await gateway.cli(['revoke', 'token', a.access_token]);
    assert.match(stdout, new RegExp(`revoked token jti:${a.jti}`));
    await assertEventually(async () => {
      await assert.rejects(chat(a.access_token), (error: unknown) => errorCode(error) === 'credential_revoked');
    });

    const refused = async (args: string[], message: RegExp) =>
      assert.rejects(gateway.cli(args), (error: { code?: number; stderr?: string }) => error.code === 2 && message.test(error.stderr ?? ''));
    await refused(['revoke', 'user', 'alice'], /"alice" is not a subject: subjects are key:<name>, oidc:<issuer name>:<sub>/);
    await refused(['revoke', 'subject', 'oidc:corp:alice'], /no OIDC issuer is named "corp" \(configured: none\)/);
    await refused(['revoke', 'token', apiKey], /this is an API key, not a token id/);
    await refused(['revoke', 'user', a.access_token], /a user is named by its subject, not by a token/);
    const api = await fetch(`${gateway.adminUrl}/api/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'subject', value: 'ml-agent' }),
    });
    assert.equal(api.status, 400);
    assert.match(((await api.json()) as { error: { message: string } }).error.message, /"ml-agent" is not a subject/);

    const list = await fetch(`${gateway.adminUrl}/api/revocations`, { headers: { authorization: `Bearer ${adminKey}` } });
    const values = ((await list.json()) as { revocations: Array<{ value: string }> }).revocations.map((r) => r.value);
    assert.ok(values.includes(`jti:${a.jti}`));
    assert.ok(!values.some((v) => v.includes(a.access_token.split('.')[2]!) || v.includes(apiKey) || !/^(jti|key):/.test(v)), values.join(', '));
  });

  test('revoking the API key a token was exchanged for refuses that token too', async () => {
    const key = await gateway.createKey('short-lived-job', ['ml'], ['--kind', 'service']);
    const { access_token: token } = (await (await exchange(key, { connections: ['demo'] })).json()) as { access_token: string };
    await chat(token);
    await gateway.cli(['revoke', 'key', 'short-lived-job']);
    await assertEventually(async () => {
      await assert.rejects(chat(token), (error: unknown) => errorCode(error) === 'credential_revoked');
    });
    await chat(apiKey);
  });

  test('a token never outlives the API key it was exchanged for', async () => {
    const key = await gateway.createKey('expiring-job', ['ml'], ['--kind', 'service', '--expires', '3s']);
    const res = await exchange(key, { connections: ['demo'], ttl: '30m' });
    assert.equal(res.status, 200);
    const { access_token: token, expires_in: expiresIn } = (await res.json()) as { access_token: string; expires_in: number };
    // Before, the token lived the 30 minutes asked for: a key about to expire (or the
    // old key of a rotation) bought half an hour more of access.
    assert.ok(expiresIn <= 3, `expires_in ${expiresIn}`);
    assert.ok((decodeJwt(token).exp ?? 0) * 1000 <= Date.now() + 3000);
    await chat(token);
    await new Promise((resolve) => setTimeout(resolve, 3500));
    await assert.rejects(chat(key), (error: unknown) => errorCode(error) === 'credential_expired');
    await assert.rejects(chat(token), (error: unknown) => errorCode(error) === 'credential_expired');
  });

  test("a reviewer's just-in-time token cannot vote on reviews, nor read others'; the requester's token follows its own", async () => {
    const requesterKey = await gateway.createKey('held-requester', ['ml']);
    const reviewerKey = await gateway.createKey('reviewer-with-agent', ['ml', 'reviewers']);
    const held = await fetch(`${gateway.url}/c/demo/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${requesterKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'HOLD-FOR-REVIEW please' }] }),
    });
    assert.equal(held.status, 403);
    const reviewId = ((await held.json()) as { error: { review_id: string } }).error.review_id;
    // The reviewer hands its agent a token for chat on demo: a prompt-injected agent
    // approved the review with it (200, state approved) before.
    const agentToken = ((await (await exchange(reviewerKey, { connections: ['demo'], operations: ['chat.completions'] })).json()) as { access_token: string }).access_token;
    const review = (path: string, token: string, method = 'GET') =>
      fetch(`${gateway.adminUrl}/api/reviews${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(method === 'POST' ? { body: '{}' } : {}) });
    for (const [path, method] of [[`/${reviewId}/approve`, 'POST'], [`/${reviewId}/deny`, 'POST'], [`/${reviewId}/cancel`, 'POST'], [`/${reviewId}`, 'GET'], ['', 'GET']] as const) {
      const res = await review(path, agentToken, method);
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'token_scope_denied', `${method} ${path}`);
    }
    // the requester's own token reads its review; the reviewer's key still votes
    const requesterToken = ((await (await exchange(requesterKey, { connections: ['demo'] })).json()) as { access_token: string }).access_token;
    const own = await review(`/${reviewId}`, requesterToken);
    assert.equal(own.status, 200);
    assert.equal(((await own.json()) as { state: string }).state, 'pending');
    const vote = await review(`/${reviewId}/approve`, reviewerKey, 'POST');
    assert.equal(vote.status, 200);
    assert.equal(((await vote.json()) as { state: string }).state, 'approved');
  });

  test('every revocation and lift, through the CLI or the admin API, is an event in the audit chain', async () => {
    // `revoke` (CLI) and POST /api/revocations wrote only the revocations table: who cut
    // which credential was not in the tamper-evident chain (and `revoke key` not as key.revoked).
    const key = await gateway.createKey('chained-bot', ['ml'], ['--kind', 'service']);
    await gateway.cli(['revoke', 'subject', 'key:someone', '--reason', 'left the team']);
    await gateway.cli(['revoke', 'key', 'chained-bot']);
    const api = await fetch(`${gateway.adminUrl}/api/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'subject', value: 'key:other', reason: 'incident 42' }),
    });
    assert.equal(api.status, 200);
    const created = ((await api.json()) as { revocation: { id: string } }).revocation.id;
    const lifted = await fetch(`${gateway.adminUrl}/api/revocations/${created}/lift`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(lifted.status, 200);
    const bundle = join(gateway.dir, 'revocations-bundle');
    await gateway.cli(['audit', 'export', '--out', bundle]);
    const events = readFileSync(join(bundle, 'events.jsonl'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { kind: string; actor: string; target: string; details: Record<string, unknown> });
    const mine = events.slice(events.findIndex((e) => e.details['value'] === 'key:someone'));
    const chained = mine.filter((e) => e.kind.startsWith('revocation.') || (e.kind === 'key.revoked' && e.details['name'] === 'chained-bot'));
    // The earlier tests' revocations (CLI) are in the chain too.
    assert.ok(events.some((e) => e.kind === 'revocation.created' && String(e.details['value']).startsWith('jti:')));
    assert.deepEqual(
      chained.map((e) => [e.kind, e.actor.startsWith('cli:') ? 'cli' : e.actor, e.details['value'] ?? e.details['name'], e.details['reason'] ?? null]),
      [
        ['revocation.created', 'cli', 'key:someone', 'left the team'],
        ['key.revoked', 'cli', 'chained-bot', null],
        ['revocation.created', 'key:admin', 'key:other', 'incident 42'],
        ['revocation.lifted', 'key:admin', undefined, null],
      ],
    );
    assert.equal(chained[3]!.target, `revocation:${created}`);
    assert.ok(key.length > 0);
  });

  test('every token issued is a token.issued event in the audit chain, before it is handed out, without the token', async () => {
    const res = await exchange(apiKey, { connections: ['demo'], operations: ['chat.completions'], ttl: '5m' });
    assert.equal(res.status, 200);
    const { access_token: token, jti } = (await res.json()) as { access_token: string; jti: string };
    const bundle = join(gateway.dir, 'tokens-bundle');
    await gateway.cli(['audit', 'export', '--out', bundle]);
    const text = readFileSync(join(bundle, 'events.jsonl'), 'utf8');
    assert.ok(!text.includes(token) && !text.includes(token.split('.')[2]!), 'the token is not in the chain');
    const issued = text.trim().split('\n').map((line) => JSON.parse(line) as { kind: string; actor: string; target: string; details: Record<string, unknown> }).filter((e) => e.target === `jti:${jti}`);
    assert.equal(issued.length, 1);
    assert.deepEqual([issued[0]!.kind, issued[0]!.actor, issued[0]!.details['scope'], issued[0]!.details['groups']], ['token.issued', 'key:ml-agent', { connections: ['demo'], operations: ['chat.completions'] }, ['ml']]);
  });

  test('the generated signing key file is private (mode 0600)', () => {
    const mode = statSync(join(gateway.dir, 'gateway-signing-key.pem')).mode & 0o777;
    assert.equal(mode, 0o600);
  });
});

/** Revocations propagate by polling (250 ms); a CLI revocation is visible within 1 s. */
async function assertEventually(check: () => Promise<void>, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
