// A responder revokes a leaked key, then asks "was it used since?": `gatehouse sessions
// list --subject key:<name>` must list every later attempt with it — on the data plane,
// at a PostgreSQL login, at POST /auth/token — since the key's secret proved whose it is.
// Before, those refusals were recorded with no subject (as for an unknown key), so the
// search showed nothing after the revocation. A wrong secret for the same key id proves
// nothing, and stays anonymous.

import assert from 'node:assert/strict';
import { before, after, describe, test } from 'node:test';
import pg from 'pg';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { withPostgresGateway, type PostgresGateway } from '../helpers/postgres-gateway.js';

const database = await createTestPostgresDatabase();

describe('refusals of a revoked key are attributed to it', { skip: 'skip' in database ? database.skip : undefined }, () => {
  let upstream: DemoUpstream;
  let pgGateway: PostgresGateway;
  before(async () => {
    upstream = await startDemoUpstream({ apiKey: 'sk-up' });
    process.env['UPSTREAM_KEY'] = 'sk-up';
  });
  after(async () => upstream?.close());
  withPostgresGateway(
    database,
    {
      name: 'billingdb',
      // A second connection, HTTP, in the same list (read when the suite starts, after the upstream).
      get connection() {
        return `    access: { groups: [billing] }
  - name: demo
    type: openai
    target: ${upstream.url}
    credential: { secret: "\${UPSTREAM_KEY}" }
    access: { groups: [billing] }`;
      },
    },
    (started) => (pgGateway = started),
  );

  test('HTTP, PostgreSQL and /auth/token attempts after the revocation are found by subject; a wrong secret is not', async () => {
    const gateway = pgGateway.gateway;
    const key = await gateway.createKey('billing-agent', ['billing'], ['--kind', 'agent']);
    const chat = (token: string) =>
      fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"model":"demo-chat","messages":[{"role":"user","content":"hi"}]}' });
    assert.equal((await chat(key)).status, 200);

    await gateway.cli(['revoke', 'key', 'billing-agent', '--reason', 'leaked']);
    // A revocation made by the CLI (another process) reaches the gateway within a second.
    let refused = await chat(key);
    for (let i = 0; refused.status === 200 && i < 40; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      refused = await chat(key);
    }
    assert.equal(refused.status, 401);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'credential_revoked');
    const client = new pg.Client(pgGateway.clientConfig('billing-agent', key));
    const login = await client.connect().then(() => undefined, (error: unknown) => error as { code?: string; message?: string });
    await client.end().catch(() => undefined);
    assert.match(String(login?.message), /credential presented has been revoked/);
    const token = await fetch(`${gateway.url}/auth/token`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(token.status, 401);
    const wrongSecret = `${key.slice(0, -43)}${'Z'.repeat(43)}`;
    assert.equal((await chat(wrongSecret)).status, 401);

    const { stdout } = await gateway.cli(['sessions', 'list', '--subject', 'key:billing-agent', '--decision', 'deny', '--json']);
    const denied = (JSON.parse(stdout) as Array<{ connection: string; operation: string; errorCode: string; subject: string }>).map((r) => [r.connection, r.operation, r.errorCode, r.subject]);
    assert.deepEqual(denied, [
      ['billingdb', 'sql.connect', 'credential_revoked', 'key:billing-agent'],
      ['demo', 'chat.completions', 'credential_revoked', 'key:billing-agent'],
    ]);
    // The wrong secret claimed the key's id but proved nothing: recorded, with no subject.
    const { stdout: all } = await gateway.cli(['sessions', 'list', '--decision', 'deny', '--json']);
    const anonymous = (JSON.parse(all) as Array<{ errorCode: string; subject: string | null }>).filter((r) => r.errorCode === 'invalid_credential');
    assert.deepEqual(anonymous.map((r) => r.subject), [null]);
    // POST /auth/token is chained as auth.refused, its actor the key's subject.
    const { stdout: bundle } = await gateway.cli(['audit', 'export', '--out', `${gateway.dir}/evidence`]);
    assert.match(bundle, /exported/);
    const { readFileSync } = await import('node:fs');
    const events = readFileSync(`${gateway.dir}/evidence/events.jsonl`, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { kind: string; actor: string | null; target: string; details: { code?: string } });
    const authRefused = events.filter((e) => e.kind === 'auth.refused').map((e) => [e.actor, e.target, e.details.code]);
    assert.deepEqual(authRefused, [['key:billing-agent', 'POST /auth/token', 'credential_revoked']]);
    // The evidence about the key alone: its use, its creation, its revocation and the
    // attempts after it, in one signed bundle (before, a bundle filtered by subject held
    // only its exchanges' events: the containment was not in it).
    await gateway.createKey('bystander', ['billing']);
    await gateway.cli(['audit', 'export', '--out', `${gateway.dir}/about-key`, '--subject', 'key:billing-agent']);
    const about = readFileSync(`${gateway.dir}/about-key/events.jsonl`, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { kind: string; actor: string | null; target: string });
    const kinds = about.map((e) => e.kind);
    for (const kind of ['key.created', 'key.revoked', 'exchange.finished', 'exchange.refused', 'auth.refused']) assert.ok(kinds.includes(kind), `${kind} is in the bundle: ${kinds.join(', ')}`);
    assert.ok(!about.some((e) => e.kind === 'key.created' && JSON.stringify(e).includes('bystander')), 'another key is not');
    assert.ok(!about.some((e) => e.kind === 'exchange.refused' && e.actor === null), 'the anonymous wrong-secret attempt is not');
    const { stdout: verified } = await gateway.cli(['audit', 'verify']);
    assert.match(verified, /^chain verified/);
  });
});
