// Regression: a statement cut by `limits.maxRows` was recorded with the database's
// command tag next to the rows the client got (`result    SELECT 6000  rows 5000`),
// as if the client had received the whole result. The record now says what the client
// got: the rows sent, no command tag, and that the gateway stopped it for the limit.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { withPostgresGateway, type PostgresGateway } from '../helpers/postgres-gateway.js';

const database = await createTestPostgresDatabase();

describe('PostgreSQL: the record of a statement cut by the row limit', { skip: 'skip' in database ? database.skip : undefined }, () => {
  let pgGateway: PostgresGateway;
  withPostgresGateway(database, { name: 'warehouse', connection: '    limits: { maxRows: 5000 }\n    access: { groups: [analysts] }' }, (started) => (pgGateway = started));

  test('sessions show and the admin API say 5000 rows sent then stopped for the limit, not "SELECT 6000"', async () => {
    const { gateway } = pgGateway;
    const token = await gateway.createKey('report-bot', ['analysts'], ['--kind', 'agent']);
    const client = new pg.Client(pgGateway.clientConfig('report-bot', token));
    await client.connect();
    try {
      await assert.rejects(client.query("select g, 'row ' || g as label from generate_series(1, 6000) g"), { code: '54000' });
      assert.equal((await client.query('select 1 as n')).rows[0].n, 1);
    } finally {
      await client.end();
    }
    await new Promise((r) => setTimeout(r, 300));
    const { stdout: list } = await gateway.cli(['sessions', 'list', '--operation', 'sql.select', '--json']);
    const cut = (JSON.parse(list) as { id: string; errorCode?: string }[]).find((s) => s.errorCode === 'row_limit_exceeded');
    assert.ok(cut, list);
    const { stdout } = await gateway.cli(['sessions', 'show', cut.id]);
    assert.match(stdout, /^result {4}- {2}rows 5000, then stopped by the gateway \(row_limit_exceeded\)$/m);
    assert.doesNotMatch(stdout, /SELECT 6000/);
    const adminKey = await gateway.createKey('auditor', ['admins']);
    const detail = (await (await fetch(`${gateway.adminUrl}/api/sessions/${cut.id}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { response: { body: string } };
    assert.deepEqual(JSON.parse(detail.response.body), { command: null, rows: 5000, stopped: 'row_limit_exceeded' });
    assert.match(stdout, /error row_limit_exceeded: The query returned more than 5000 rows, the limit on connection "warehouse" \(maxRows\); rows beyond it were not sent\./);
    const { stdout: sessions } = await gateway.cli(['sessions', 'list', '--operation', 'sql.session', '--limit', '1', '--json']);
    const { stdout: session } = await gateway.cli(['sessions', 'show', (JSON.parse(sessions) as { id: string }[])[0]!.id]);
    assert.match(session, /sql\.select {2}allow {2}error row_limit_exceeded after 5000 rows/);
    assert.match(session, /sql\.select {2}allow {2}SELECT 1 \(1 rows\)/);
  });
});
