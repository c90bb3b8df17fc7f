// Security regressions of the agent tunnel, each its own test: the caller's token never
// reaches the agent; only keys of kind agent in group agent:<name> may serve <name>;
// a gateway-held credential travels per exchange inside the tunnel. The same for a
// PostgreSQL session: the caller's password (a Gatehouse key) is consumed at login and
// never reaches the agent; a gateway-held database credential travels in the exchange.

import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { completeTrailer, connectPath, encodeFrame, encodeHead, exchangePathPrefix, readFrames } from '../../src/agent/protocol.js';
import { authentication, backendKeyData, cstring, dataRow, FrameReader, int16, int32, message, parameterStatus, readyForQuery } from '../../src/protocols/postgres/codec.js';
import { agentKey, startTestAgent, startTunnelGateway, waitFor, type TunnelGateway } from './helpers.js';

describe('agent tunnel security', () => {
  let gw: TunnelGateway;

  before(async () => {
    gw = await startTunnelGateway(`  - name: held
    type: http
    via: agent:raw
    credential: { header: x-api-key, scheme: "", secret: "\${HELD_SECRET}" }
    access: { groups: [ml] }
  - name: plain
    type: http
    via: agent:edge
    access: { groups: [ml] }
  - name: pgheld
    type: postgres
    via: agent:pgraw
    listen: { host: 127.0.0.1, port: 0 }
    allowPlaintext: true
    credential: { user: held_role, secret: "\${HELD_PG_SECRET}" }
    access: { groups: [ml] }
`, { env: { HELD_SECRET: 'held-on-gateway', HELD_PG_SECRET: 'held-pg-password' } });
  });
  after(async () => gw?.close());

  test('the caller token never crosses to the agent; the gateway-held credential does, per exchange', async () => {
    // A bare-protocol agent (docs/agent.md) that records everything it receives.
    const key = await agentKey(gw, 'raw-1', ['agent:raw']);
    const session = connect(gw.agentsUrl, { ca: gw.pki.ca });
    const control = session.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${key}` }, { endStream: false });
    control.write(encodeFrame({ type: 'hello', name: 'raw', connections: ['held'], concurrency: 4, version: 'test' }));
    const received: string[] = [];
    const frames = readFrames(control);
    const welcome = await frames.next();
    assert.equal((welcome.value as { type: string }).type, 'welcome');

    // Keep reading the control stream (as a real agent does) and answer exchanges beside it.
    let answer!: (frame: Record<string, unknown>) => void;
    const answered = new Promise<Record<string, unknown>>((resolve) => (answer = resolve));
    void (async () => {
      for await (const frame of frames) {
        received.push(JSON.stringify(frame));
        if (frame['type'] !== 'exchange') continue;
        const stream = session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}${String(frame['id'])}` }, { endStream: false, waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ [completeTrailer]: '1' }));
        const body: Buffer[] = [];
        stream.on('data', (c: Buffer) => body.push(c));
        stream.once('end', () => {
          received.push(Buffer.concat(body).toString());
          stream.write(encodeHead({ status: 200, headers: { 'content-type': 'text/plain' } }));
          stream.end('ok from raw agent');
          answer(frame);
        });
      }
    })().catch(() => undefined);

    const res = await fetch(`${gw.gateway.dataPlaneUrl}/c/held/things?q=1`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.callerKey}`, cookie: 'session=caller-cookie', 'content-type': 'text/plain' },
      body: 'request body',
    });
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'ok from raw agent');
    const frame = await answered;
    assert.equal(frame['path'], '/things?q=1');
    assert.equal(frame['method'], 'POST');
    assert.deepEqual(frame['credential'], { header: 'x-api-key', value: 'held-on-gateway' });
    assert.equal(received.at(-1), 'request body');
    const everything = received.join('\n');
    assert.ok(!everything.includes(gw.callerKey), 'the caller key reached the agent');
    assert.ok(!everything.includes(gw.callerKey.slice(-12)), 'part of the caller key reached the agent');
    assert.ok(!/authorization/i.test(JSON.stringify(frame['headers'])), 'an authorization header reached the agent');
    assert.ok(!everything.includes('caller-cookie'), 'the caller cookie reached the agent');
    session.destroy();
  });

  test('PostgreSQL: the caller password never crosses to the agent; the gateway-held database credential does, in the exchange frame', async () => {
    // A bare-protocol agent that plays a trust-auth database and records everything it receives.
    const key = await agentKey(gw, 'pgraw-1', ['agent:pgraw']);
    const session: ClientHttp2Session = connect(gw.agentsUrl, { ca: gw.pki.ca });
    const control = session.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${key}` }, { endStream: false });
    control.write(encodeFrame({ type: 'hello', name: 'pgraw', connections: ['pgheld'], concurrency: 4, version: 'test' }));
    const frames = readFrames(control);
    assert.equal(((await frames.next()).value as { type: string }).type, 'welcome');
    const received: Buffer[] = [];
    const exchanges: Record<string, unknown>[] = [];
    void (async () => {
      for await (const frame of frames) {
        received.push(Buffer.from(JSON.stringify(frame)));
        if (frame['type'] !== 'exchange') continue;
        exchanges.push(frame);
        const stream = session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}${String(frame['id'])}` }, { endStream: false, waitForTrailers: true });
        stream.once('wantTrailers', () => stream.sendTrailers({ [completeTrailer]: '1' }));
        stream.write(encodeHead({ status: 200, headers: {} }));
        const reader = new FrameReader(1024 * 1024);
        let started = false;
        stream.on('data', (chunk: Buffer) => {
          received.push(chunk);
          reader.push(chunk);
          if (!started) {
            if (!reader.next(true)) return; // the StartupMessage
            started = true;
            stream.write(Buffer.concat([authentication(0), parameterStatus('server_version', '16.0'), parameterStatus('client_encoding', 'UTF8'), backendKeyData(4242, 77), readyForQuery('I')]));
          }
          for (let f = reader.next(false); f; f = reader.next(false)) {
            if (f.type === 'X') return void stream.end();
            if (f.type !== 'Q') continue;
            // RowDescription: one int4 column "x", then one row, CommandComplete, ReadyForQuery.
            const column = Buffer.concat([cstring('x'), int32(0), int16(0), int32(23), int16(4), int32(-1), int16(0)]);
            stream.write(Buffer.concat([message('T', Buffer.concat([int16(1), column])), dataRow([Buffer.from('1')]), message('C', cstring('SELECT 1')), readyForQuery('I')]));
          }
        });
      }
    })().catch(() => undefined);

    const port = Number(gw.gateway.postgresListeners.get('pgheld')!.split(':').at(-1));
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'caller', password: gw.callerKey, database: 'pgheld' });
    await client.connect();
    assert.deepEqual((await client.query('select 1 as x')).rows, [{ x: 1 }]);
    await client.end();
    // The session's record is written by the recorder's worker; let it finish before the next
    // test creates keys on the same SQLite file (a concurrent write there can fail with SQLITE_BUSY_SNAPSHOT).
    await waitFor(async () => (await gw.gateway.store.db.selectFrom('exchanges').select('ended_at').where('operation', '=', 'sql.session').where('connection', '=', 'pgheld').executeTakeFirst())?.ended_at != null, 'the session record');

    assert.equal(exchanges.length, 1);
    assert.equal(exchanges[0]!['kind'], 'tcp');
    assert.deepEqual(exchanges[0]!['credential'], { user: 'held_role', secret: 'held-pg-password' });
    const everything = Buffer.concat(received);
    assert.ok(everything.includes('select 1 as x'), 'the statement did not reach the agent');
    assert.ok(!everything.includes(gw.callerKey), 'the caller key reached the agent');
    assert.ok(!everything.includes(gw.callerKey.slice(-12)), 'part of the caller key reached the agent');
    session.destroy();
  });

  test('a service key (not kind agent) is refused with 403', async () => {
    const key = await agentKey(gw, 'not-an-agent', ['agent:edge'], 'service');
    await assert.rejects(startTestAgent(gw, key, 'name: edge\nconnections:\n  - { name: plain, target: "http://127.0.0.2:9/" }\n'), /refused by the gateway \(403\).*needs kind agent and group agent:edge/);
  });

  test('an agent key may not serve an agent name outside its groups', async () => {
    const key = await agentKey(gw, 'other-agent', ['agent:other']);
    await assert.rejects(startTestAgent(gw, key, 'name: edge\nconnections:\n  - { name: plain, target: "http://127.0.0.2:9/" }\n'), /refused by the gateway \(403\).*key:other-agent may not serve as agent \\"edge\\"/);
  });

  test('a wrong secret is refused with 401 invalid_credential, and the refusal is chained (auth.refused)', async () => {
    const key = await agentKey(gw, 'edge-x', ['agent:edge']);
    const wrong = key.slice(0, -4) + (key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    await assert.rejects(startTestAgent(gw, wrong, 'name: edge\nconnections:\n  - { name: plain, target: "http://127.0.0.2:9/" }\n'), /refused by the gateway \(401\).*invalid_credential/);
    // A guessing run against agent keys is on record where it cannot be deleted unseen.
    const keyId = key.split('_')[1]!;
    const events = await gw.gateway.store.db.selectFrom('audit_events').select(['actor', 'target', 'details']).where('kind', '=', 'auth.refused').execute();
    const refusal = events.map((e) => ({ ...e, details: JSON.parse(e.details) as Record<string, unknown> })).find((e) => String(e.details['reason']).includes(keyId));
    assert.ok(refusal, JSON.stringify(events));
    assert.deepEqual([refusal.actor, refusal.target, refusal.details['listener'], refusal.details['code']], [null, 'POST agent link', 'agents', 'invalid_credential']);
    assert.ok(!JSON.stringify(events).includes(wrong.slice(21)), 'no secret in the record');
  });

  test('a revoked agent key: the connected agent is dropped within a second, and its reconnects are refused', async () => {
    const key = await agentKey(gw, 'edge-revoked', ['agent:edge']);
    const { agent, states } = await startTestAgent(gw, key, 'name: edge\nconnections:\n  - { name: plain, target: "http://127.0.0.2:9/" }\n');
    try {
      const admin = { authorization: `Bearer ${gw.adminKey}`, 'content-type': 'application/json' };
      const connected = async () => ((await (await fetch(`${gw.gateway.adminUrl}/api/agents`, { headers: admin })).json()) as { agents: { subject: string }[] }).agents.filter((a) => a.subject === 'key:edge-revoked').length;
      assert.equal(await connected(), 1);
      // Revoking the subject (not the key row): only the revocation list knows it.
      const revoked = await fetch(`${gw.gateway.adminUrl}/api/revocations`, { method: 'POST', headers: admin, body: JSON.stringify({ kind: 'subject', value: 'key:edge-revoked' }) });
      assert.equal(revoked.status, 200, await revoked.text());
      await waitFor(async () => (await connected()) === 0, 'the revoked agent to be dropped', 2_000);
      await waitFor(() => states.some((line) => /^refused by the gateway \(401\).*credential_revoked/.test(line)), 'a reconnect to be refused as revoked', 5_000);
      assert.equal(await connected(), 0);
    } finally {
      await agent.close();
    }
  });

  test('an agent key that expires while its agent is connected: the agent is dropped when it expires, and its reconnects are refused', async () => {
    const key = (await gw.gateway.apiKeys.create({ name: 'edge-expiring', kind: 'agent', groups: ['agent:edge'], expiresAt: Date.now() + 1_500 })).token;
    const { agent, states } = await startTestAgent(gw, key, 'name: edge\nconnections:\n  - { name: plain, target: "http://127.0.0.2:9/" }\n');
    try {
      const admin = { authorization: `Bearer ${gw.adminKey}` };
      const connected = async () => ((await (await fetch(`${gw.gateway.adminUrl}/api/agents`, { headers: admin })).json()) as { agents: { subject: string }[] }).agents.filter((a) => a.subject === 'key:edge-expiring').length;
      assert.equal(await connected(), 1);
      await waitFor(async () => (await connected()) === 0, 'the agent of the expired key to be dropped', 4_000);
      await waitFor(() => states.some((line) => /^refused by the gateway \(401\).*credential_expired/.test(line)), 'a reconnect to be refused as expired', 5_000);
    } finally {
      await agent.close();
    }
  });

  test('exchange streams on a link that never authenticated are refused', async () => {
    const session = connect(gw.agentsUrl, { ca: gw.pki.ca });
    const stream = session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}x_guess` }, { endStream: true });
    const status = await new Promise((r) => stream.once('response', (h) => r(h[':status'])));
    assert.equal(status, 401);
    session.destroy();
  });
});
