// The PostgreSQL store goes away (its TCP relay stops) while an exchange is at the
// upstream: the exchange was forwarded, so the upstream acted on it, but its answer
// cannot be recorded. The answer is not released (fail closed: the client's connection
// is cut). Before, the record stayed as opened (no status, no answer) for ever, and the
// `exchange` log line said 200, complete: the record of what the upstream did was lost
// without a word. Now the record is kept in memory and written when the store answers
// again, saying the answer did not reach the client; the log line says so at once.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { storeBehindRelay } from '../helpers/store-relay.js';
import type { TcpRelay } from '../helpers/tcp-relay.js';

const database = await createTestPostgresDatabase();

/** An OpenAI-like upstream whose answers wait until `answer()` (one at a time). */
async function heldUpstream(): Promise<{ url: string; arrived: Promise<void>; answer(): void; close(): Promise<void> }> {
  let arrive!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => (answer = resolve));
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    arrive();
    void answered.then(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', model: 'demo-chat', choices: [{ index: 0, message: { role: 'assistant', content: 'the answer nobody got' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 5, total_tokens: 8 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    arrived,
    answer,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the PostgreSQL store goes away while an exchange is at the upstream', { skip: 'skip' in database ? database.skip : undefined }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let relay: TcpRelay;
  let upstream: Awaited<ReturnType<typeof heldUpstream>>;
  let gateway: GatewayProcess;

  before(async () => {
    const behind = await storeBehindRelay(db.url);
    relay = behind.relay;
    upstream = await heldUpstream();
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), {
      env: { UPSTREAM_KEY: 'sk-upstream-outage', ...behind.env },
      store: behind.store,
    });
  });
  after(async () => {
    await relay?.up(); // a gateway stops cleanly only with its store back
    await gateway?.stop();
    await relay?.close();
    await upstream?.close();
    await db.drop();
  });

  test('the answer is not released, the log says recording_failed at once, and the record is written with the upstream\'s answer when the store is back', async () => {
    const key = await gateway.createKey('ml-bot', ['ml']);
    const admin = await gateway.createKey('admin', ['admins']);
    const asked = fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'while the store goes away' }] }),
      signal: AbortSignal.timeout(30_000),
    })
      .then(async (res) => ({ status: res.status, text: await res.text() }))
      .catch((error: unknown) => error as Error);
    await upstream.arrived;
    await relay.down();
    upstream.answer();

    // Fail closed: an answer whose record cannot be written is not handed over (its last
    // byte is held until then: the client sees the answer cut).
    const got = await asked;
    assert.ok(got instanceof Error, `the client got the answer without its record: ${JSON.stringify(got)}`);
    const logs = await gateway.waitForLog(/"msg":"exchange failed"/);
    const line = logs.split('\n').find((l) => l.includes('"msg":"exchange failed"'));
    assert.ok(line, `no "exchange failed" line:\n${logs}`);
    const logged = JSON.parse(line) as { exchange: string; error: string; complete: boolean; status: number };
    assert.deepEqual({ error: logged.error, complete: logged.complete }, { error: 'recording_failed', complete: false });

    await relay.up();
    // Written by the gateway when the store answers again (retried about once a second).
    let record: { status?: number; complete?: boolean; error?: { code?: string } | null; errorCode?: string; response?: { body?: string } } | undefined;
    for (let i = 0; i < 150; i++) {
      const res = await fetch(`${gateway.adminUrl}/api/sessions/${logged.exchange}`, { headers: { authorization: `Bearer ${admin}` } }).catch(() => undefined);
      if (res?.status === 200) {
        record = (await res.json()) as typeof record;
        if (record?.status !== undefined && record.status !== null) break;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.ok(record, 'no record');
    assert.equal(record.status, 200, JSON.stringify(record));
    assert.equal(record.complete, false, JSON.stringify(record));
    assert.match(JSON.stringify(record), /recording_failed/);
    assert.match(JSON.stringify(record), /the answer nobody got/);
    // The operator was told, both ways, and the chain with the late record verifies.
    assert.match(await gateway.waitForLog(/held records written/), /"held":1,"err":"[^"]+","msg":"store unreachable: records held in memory, written when it answers again"/);
    assert.match(gateway.logs(), /"written":1,"held":0,"msg":"held records written: the store answers again"/);
    assert.match((await gateway.cli(['audit', 'verify'])).stdout, /chain verified/);
    assert.equal(gateway.child.exitCode ?? gateway.child.signalCode, null, 'the gateway exited');
  });
});
