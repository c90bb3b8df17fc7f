// The data plane with recording off (`recording.enabled: false`, the benchmark switch):
// what only the record reads is skipped (body text, recordable headers, chunk timings,
// progress writes, the answer's text), but every other duty holds: the exchange id on
// the answer, and a token limit still counts the answer's usage, plain and streamed.
// Real sockets, the real forwarder and the demo upstream; an in-memory limit store.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { limitRuleSchema } from '../../../src/config/policy-schema.js';
import { startDemoUpstream, type DemoUpstream } from '../../../src/demo/upstream.js';
import type { Decision, ExchangeOutcome } from '../../../src/exchange/index.js';
import { createLocalHttpForwarder } from '../../../src/forward/index.js';
import { createLimiter, createMemoryLimitStore, type LimitStore } from '../../../src/policy/index.js';
import type { PipelineStages } from '../../../src/pipeline/index.js';
import { createDataPlaneHandler, type HttpConnection } from '../../../src/protocols/http/index.js';

const prompt = { model: 'demo-chat', messages: [{ role: 'user', content: 'three little words' }] };

describe('data plane, recording off', () => {
  let upstream: DemoUpstream;
  let server: Server;
  let url: string;
  let connection: HttpConnection;
  const finished: ExchangeOutcome[] = [];
  const added: Array<{ key: string; amount: number }> = [];
  let progressWrites = 0;

  before(async () => {
    upstream = await startDemoUpstream({ host: '127.0.0.1', port: 0 });
    connection = {
      name: 'c',
      type: 'openai',
      basePath: '/v1',
      maxRequestBody: 1024 * 1024,
      maxResponseBody: 1024 * 1024,
      forwarder: createLocalHttpForwarder({ name: 'c', origin: new URL(upstream.url).origin, credential: undefined, ca: undefined, rejectUnauthorized: true, connectTimeoutMs: 5000, headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 }),
    };
    const store = createMemoryLimitStore();
    const spy: LimitStore = { ...store, add: async (key, windowMs, amount) => { added.push({ key, amount }); return store.add(key, windowMs, amount); } };
    const decision: Decision = { effect: 'allow', rules: ['test-allow'], reason: 'allowed', policyVersion: 'test' };
    const stages: PipelineStages = {
      identify: async () => ({ subject: 'key:test', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: 'k1' }),
      policy: { version: 'test', decide: () => decision },
      limits: createLimiter([limitRuleSchema.parse({ name: 'tokens', tokens: 1_000_000 })], spy),
      // What the disabled recorder is handed, kept to check what was skipped.
      recorder: {
        open: async () => undefined,
        progress: async () => void progressWrites++,
        finish: async (_exchange, outcome) => void finished.push(outcome),
        refuse: async () => undefined,
        drain: async () => undefined,
      },
      observe: () => undefined,
    };
    // A progress write after every byte, so a skipped one would show.
    server = createServer(createDataPlaneHandler({ connections: new Map([['c', connection]]), stages, maxRecordedBody: 1024 * 1024, recording: false, progress: { intervalMs: 0, bytes: 1 } }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/c/c`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await connection.forwarder.close();
    await upstream.close();
  });

  test('a plain answer: relayed whole with its exchange id; the token limit counts its usage; no body or headers kept', async () => {
    finished.length = 0;
    added.length = 0;
    const res = await request(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: JSON.stringify(prompt) });
    const body = (await res.body.json()) as { choices: Array<{ message: { content: string } }>; usage: { total_tokens: number } };
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['gatehouse-exchange-id']), /^ex_/);
    assert.equal(body.choices[0]!.message.content, 'Demo reply to: three little words');
    const outcome = finished[0]!;
    assert.equal(outcome.complete, true);
    assert.equal(outcome.usage?.totalTokens, body.usage.total_tokens);
    assert.deepEqual(added, [{ key: 'limit:tokens:identity:key:test:tokens', amount: body.usage.total_tokens }]);
    assert.equal(outcome.responseBody, undefined);
    assert.equal(outcome.responseHeaders, undefined);
    assert.equal(outcome.chunkTimings, undefined);
  });

  test('a streamed answer: relayed to [DONE]; the token limit counts its usage; no progress writes, no timings', async () => {
    finished.length = 0;
    added.length = 0;
    progressWrites = 0;
    const res = await request(`${url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
      body: JSON.stringify({ ...prompt, stream: true, stream_options: { include_usage: true } }),
    });
    const text = await res.body.text();
    assert.equal(res.statusCode, 200);
    assert.match(String(res.headers['gatehouse-exchange-id']), /^ex_/);
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    const usage = JSON.parse(text.split('\n\n').filter((e) => e.includes('"usage"')).at(-1)!.slice('data: '.length)) as { usage: { total_tokens: number } };
    const outcome = finished[0]!;
    assert.equal(outcome.complete, true);
    assert.equal(outcome.usage?.totalTokens, usage.usage.total_tokens);
    assert.deepEqual(added, [{ key: 'limit:tokens:identity:key:test:tokens', amount: usage.usage.total_tokens }]);
    assert.equal(progressWrites, 0);
    assert.equal(outcome.chunkTimings, undefined);
  });
});
