// End to end: the real `gatehouse` process with a `type: postgres` connection, an
// `approvals:` section and a config rule `require_approval` on DELETE; node-postgres as
// the client and the admin API as the reviewer. Approved → the DELETE runs and answers;
// denied → 42501; not approved within holdFor → 57014; the session stays usable; a
// reload that denies a held statement wins over its approval.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import type { GatewayProcess } from '../helpers/gateway-process.js';
import { withPostgresGateway, type PostgresGateway } from '../helpers/postgres-gateway.js';

const database = await createTestPostgresDatabase();
const skip = 'skip' in database ? database.skip : undefined;

describe('PostgreSQL statements held for approval, end to end', { skip }, () => {
  let pgGateway: PostgresGateway;
  let gateway: GatewayProcess;
  let token: string;
  let reviewerKey: string;
  const clients: pg.Client[] = [];

  // Registered first: the clients end before the gateway stops.
  after(() => Promise.all(clients.map((c) => c.end().catch(() => undefined))));
  withPostgresGateway(
    database,
    {
      name: 'warehouse',
      setupSql: "create table orders (id int primary key, note text); insert into orders select g, 'order ' || g from generate_series(1, 10) g",
      connection: '    masking: { profiles: [scrub-cards] }\n    access: { groups: [analysts] }',
      sections: `masking:
  profiles:
    scrub-cards: { applyTo: request, entities: [CREDIT_CARD] }
policy:
  rules:
    - name: approve-deletes
      effect: require_approval
      match: { connections: [warehouse], operations: [sql.delete] }
    - name: approve-truncate
      effect: require_approval
      match: { connections: [warehouse], operations: [sql.truncate] }
approvals:
  defaults: { reviewers: [reviewers], holdFor: 20s }
  rules:
    approve-truncate: { holdFor: 500ms }
  pollInterval: 50ms
`,
    },
    (started) => {
      pgGateway = started;
      gateway = started.gateway;
    },
  );
  before(async () => {
    token = await gateway.createKey('etl-bot', ['analysts'], ['--kind', 'agent']);
    reviewerKey = await gateway.createKey('alice', ['reviewers'], ['--kind', 'human']);
  });

  async function connect(): Promise<{ client: pg.Client; notices: string[] }> {
    const client = new pg.Client(pgGateway.clientConfig('etl-bot', token));
    client.on('error', () => undefined);
    const notices: string[] = [];
    client.on('notice', (n) => notices.push(n.message ?? ''));
    await client.connect();
    clients.push(client);
    return { client, notices };
  }

  async function heldReview(notices: string[], index = 0): Promise<{ id: string; url: string }> {
    for (let i = 0; i < 200 && notices.length <= index; i++) await new Promise((r) => setTimeout(r, 25));
    const match = /review (rv_[0-9a-z]+), (\S+)$/.exec(notices[index] ?? '');
    assert.ok(match, `a NoticeResponse with the review, got ${JSON.stringify(notices)}`);
    return { id: match[1]!, url: match[2]! };
  }

  const vote = async (id: string, action: 'approve' | 'deny') => {
    const res = await fetch(`${gateway.adminUrl}/api/reviews/${id}/${action}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${reviewerKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ comment: `${action} from the test` }),
    });
    return { status: res.status, body: (await res.json()) as { state: string; operation: string; connection: string } };
  };

  test('approved through the admin API: the held DELETE runs and returns its rows', async () => {
    const { client, notices } = await connect();
    const running = client.query('delete from orders where id = 3 returning note');
    const review = await heldReview(notices);
    assert.equal(review.url, `${gateway.adminUrl}/api/reviews/${review.id}`);
    const approved = await vote(review.id, 'approve');
    assert.equal(approved.status, 200);
    assert.equal(approved.body.state, 'approved');
    assert.equal(approved.body.operation, 'sql.delete');
    assert.equal(approved.body.connection, 'warehouse');
    assert.deepEqual((await running).rows, [{ note: 'order 3' }]);
    assert.deepEqual((await client.query('select count(*)::int as n from orders')).rows, [{ n: 9 }]);
  });

  test('denied through the admin API: ErrorResponse 42501, nothing deleted, the session goes on', async () => {
    const { client, notices } = await connect();
    const running = client.query('delete from orders where id = 4');
    const review = await heldReview(notices);
    assert.equal((await vote(review.id, 'deny')).body.state, 'denied');
    await assert.rejects(running, (error: pg.DatabaseError) => {
      assert.equal(error.code, '42501');
      assert.match(error.message, new RegExp(`^Review ${review.id} was denied by key:alice: the statement was not run`));
      return true;
    });
    assert.deepEqual((await client.query('select count(*)::int as n from orders where id = 4')).rows, [{ n: 1 }]);
  });

  test('the review shows the statement as recorded: a card number a request profile scrubs is not in its preview', async () => {
    // The preview (stored, sent to webhooks and Slack) held the statement as sent, card and all.
    const { client, notices } = await connect();
    const running = client.query("delete from orders where note = '4111 1111 1111 1111'");
    const review = await heldReview(notices);
    const shown = (await (await fetch(`${gateway.adminUrl}/api/reviews/${review.id}`, { headers: { authorization: `Bearer ${reviewerKey}` } })).json()) as { promptPreview: string };
    assert.equal(shown.promptPreview, "delete from orders where note = '[CREDIT_CARD]'");
    await vote(review.id, 'deny');
    await assert.rejects(running, { code: '42501' });

    const extended = client.query({ text: "delete from orders where note = '5555 5555 5555 4444' and id = $1", values: [4] });
    const second = await heldReview(notices, 1);
    const preview = (await (await fetch(`${gateway.adminUrl}/api/reviews/${second.id}`, { headers: { authorization: `Bearer ${reviewerKey}` } })).json()) as { promptPreview: string };
    assert.equal(preview.promptPreview, "delete from orders where note = '[CREDIT_CARD]' and id = $1\n-- parameters: $1 = '4'");
    await vote(second.id, 'deny');
    await assert.rejects(extended, { code: '42501' });
  });

  test('nobody decides within holdFor: 57014, nothing truncated, the session goes on', async () => {
    const { client, notices } = await connect();
    await assert.rejects(client.query('truncate orders'), { code: '57014' });
    await heldReview(notices);
    assert.deepEqual((await client.query('select count(*)::int as n from orders')).rows, [{ n: 9 }]);
  });

  test('a reload that denies DELETE while one is held: approved afterwards, it is refused (42501) and does not run', async () => {
    const admin = await gateway.createKey('admin', ['admins'], ['--kind', 'human']);
    const { client, notices } = await connect();
    const running = client.query('delete from orders where id = 5');
    const review = await heldReview(notices);
    const policy = async () => ((await (await fetch(`${gateway.adminUrl}/api/policy`, { headers: { authorization: `Bearer ${admin}` } })).json()) as { version: string }).version;
    const before = await policy();
    const config = readFileSync(gateway.configPath, 'utf8');
    writeFileSync(gateway.configPath, config.replace('  rules:\n', '  rules:\n    - name: no-deletes\n      effect: deny\n      message: Deletes are frozen.\n      match: { operations: [sql.delete] }\n'));
    const reload = await fetch(`${gateway.adminUrl}/api/policy/reload`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: '{}' });
    assert.equal(reload.status, 200, await reload.clone().text());
    // The gateway watches its config file: the watcher may have reloaded it first (then this reload changes nothing).
    assert.notEqual(((await reload.json()) as { version: string }).version, before);
    assert.equal((await vote(review.id, 'approve')).body.state, 'approved');
    await assert.rejects(running, (error: pg.DatabaseError) => {
      assert.deepEqual({ code: error.code, message: error.message }, { code: '42501', message: 'Deletes are frozen. (rule: no-deletes)' });
      return true;
    });
    assert.deepEqual((await client.query('select count(*)::int as n from orders where id = 5')).rows, [{ n: 1 }]);
  });
});
