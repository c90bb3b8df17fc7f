// A request that by itself is more than a limit allows in a whole window (more embedding
// inputs, or more bytes, than the window's budget) can never pass: it used to get 429
// with Retry-After up to the window's end, which the OpenAI SDK slept for (an hour) and
// retried, twice, each refused again. It is a 413 naming the limit, sent once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-oversized';

describe('a request larger than a whole window of a limit', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let client: OpenAI;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    gateway = await startGatewayProcess(`${demoConnectionYaml(upstream.url)}
policy:
  limits:
    rules:
      - name: embeddings-harvest
        match: { operations: [embeddings] }
        per: identity
        window: 1h
        embeddingInputs: 3
`, { env: { UPSTREAM_KEY: upstreamKey } });
    client = new OpenAI({ apiKey: await gateway.createKey('ml-bot', ['ml']), baseURL: `${gateway.url}/c/demo`, maxRetries: 2 });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('5 inputs against 3 an hour: 413 naming the limit, not retried by the SDK; 3 inputs still pass, then 429', { timeout: 30_000 }, async () => {
    const error = await client.embeddings.create({ model: 'demo-embed', input: ['a', 'b', 'c', 'd', 'e'] }).then(
      () => assert.fail('expected a refusal'),
      (e: unknown) => e as InstanceType<typeof OpenAI.APIError>,
    );
    assert.equal(error.status, 413);
    const body = error.error as { code: string; rule: string; message: string };
    assert.deepEqual(body, {
      message: 'The request has 5 embedding inputs, more than limit "embeddings-harvest" allows per hour (3), so it cannot pass: send less at a time.',
      type: 'invalid_request_error',
      code: 'request_too_large',
      param: null,
      rule: 'embeddings-harvest',
    });
    // Sent once: the SDK does not retry a 413 (it retried the 429 twice).
    // (Every attempt was answered before the SDK gave up; their log lines are written a little later.)
    const refusals = () => gateway.logs().split('\n').filter((line) => line.includes('"error":"request_too_large"')).length;
    for (let i = 0; i < 40 && refusals() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(refusals(), 1, gateway.logs());
    // Nothing was counted: the window's 3 inputs are still there.
    const ok = await client.embeddings.create({ model: 'demo-embed', input: ['a', 'b', 'c'] });
    assert.equal(ok.data.length, 3);
    await assert.rejects(client.embeddings.create({ model: 'demo-embed', input: 'd' }, { maxRetries: 0 }), (e: InstanceType<typeof OpenAI.APIError>) => e.status === 429);
  });
});
