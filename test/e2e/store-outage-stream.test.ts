// The PostgreSQL store goes away (its TCP relay stops) while an answer streams, through
// the real gateway process. The stream's progress writes fail, and the answer is cut at
// the next chunk: fail closed, as for an answer whose final record cannot be written.
// Before, a failed progress write was ignored and the gateway went on relaying the whole
// stream with nothing recorded since the outage began, so a gateway killed meanwhile
// left a record seconds behind what the client had received.

import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createTestPostgresDatabase } from '../helpers/databases.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { storeBehindRelay } from '../helpers/store-relay.js';
import type { TcpRelay } from '../helpers/tcp-relay.js';

const database = await createTestPostgresDatabase();
const lastChunk = 300;

/** An SSE upstream that sends chunk 0..lastChunk, one each `next()` call. */
async function steppedUpstream(): Promise<{ url: string; next(): boolean; close(): Promise<void> }> {
  let stream: ServerResponse | undefined;
  let sent = 0;
  const server: Server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.flushHeaders();
    stream = res;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    next() {
      if (!stream || stream.destroyed || sent > lastChunk) return false;
      stream.write(`data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: `chunk-${sent} ` } }] })}\n\n`);
      if (sent === lastChunk) stream.end('data: [DONE]\n\n');
      sent++;
      return true;
    },
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('the PostgreSQL store goes away while an answer streams', { skip: 'skip' in database ? database.skip : undefined }, () => {
  const db = database as { url: string; drop(): Promise<void> };
  let relay: TcpRelay;
  let upstream: Awaited<ReturnType<typeof steppedUpstream>>;
  let gateway: GatewayProcess;

  before(async () => {
    const behind = await storeBehindRelay(db.url);
    relay = behind.relay;
    upstream = await steppedUpstream();
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, 'audit:\n  progress: { interval: 20ms }\n'), {
      env: { UPSTREAM_KEY: 'sk-upstream-outage-stream', ...behind.env },
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

  test('the answer is cut soon after, and the held record has everything the client received', async () => {
    const key = await gateway.createKey('ml-bot', ['ml']);
    const admin = await gateway.createKey('admin', ['admins']);
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'stream while the store goes away' }] }),
    });
    assert.equal(res.status, 200);
    const exchangeId = res.headers.get('gatehouse-exchange-id')!;
    let received = '';
    let ended: 'end' | 'cut' | undefined;
    const reading = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body!) received += decoder.decode(chunk as Uint8Array, { stream: true });
        ended = 'end';
      } catch {
        ended = 'cut';
      }
    })();
    for (let i = 0; i < 5; i++) {
      upstream.next();
      await pause(50);
    }
    await relay.down();
    // Each chunk after the outage would be relayed unrecorded: the upstream sends them
    // one by one until the gateway stops taking them or its stream is done.
    while (ended === undefined && upstream.next()) await pause(40);
    await reading;
    assert.equal(ended, 'cut', 'the answer was cut, not completed');
    assert.doesNotMatch(received, new RegExp(`chunk-${lastChunk} `), 'the whole stream was relayed while nothing could record it');

    await relay.up();
    // The cut answer's record is held and written when the store answers again.
    let record: { complete?: boolean; errorCode?: string | null; bytesOut?: number; response?: { text?: string } } | undefined;
    for (let i = 0; i < 150; i++) {
      const got = await fetch(`${gateway.adminUrl}/api/sessions/${exchangeId}`, { headers: { authorization: `Bearer ${admin}` } }).catch(() => undefined);
      if (got?.status === 200) {
        record = (await got.json()) as typeof record;
        if (record?.errorCode) break;
      }
      await pause(100);
    }
    assert.ok(record, 'no record');
    assert.equal(record.complete, false, JSON.stringify(record));
    assert.equal(record.errorCode, 'recording_failed', JSON.stringify(record).slice(0, 500));
    // Everything the client got is in the record.
    const seen = [...received.matchAll(/chunk-(\d+) /g)].map((m) => m[1]);
    const recorded = JSON.stringify(record);
    for (const n of seen) assert.match(recorded, new RegExp(`chunk-${n} `), `chunk-${n} reached the client but is not in the record`);
    assert.match((await gateway.cli(['audit', 'verify'])).stdout, /chain verified/);
  });
});
