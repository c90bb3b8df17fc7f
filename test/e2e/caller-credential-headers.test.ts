// Security regression: the caller's credential stops at the gateway whatever header
// carries it. A client that sends its Gatehouse key twice (the Anthropic SDK's
// `x-api-key`, Azure's `api-key`, beside `Authorization: Bearer`) had the copy forwarded
// to the target, which then held a key to the gateway.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startSdkGateway, upstreamKey, type SdkGateway } from '../helpers/sdk-gateway.js';

describe("the caller's credential in other headers", () => {
  let g: SdkGateway;
  before(async () => {
    g = await startSdkGateway();
    g.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'));
  });
  after(() => g.close());

  test('a header repeating the bearer key, or holding any Gatehouse key, is not forwarded', async () => {
    const caller = await g.client(['ml']);
    const other = await g.client(['ml']);
    const key = String(caller.apiKey);
    const res = await fetch(`${g.baseURL}/models`, {
      headers: {
        authorization: `Bearer ${key}`,
        'x-api-key': key,
        'api-key': key,
        'x-note': `mine is ${key}.`,
        'x-other-key': String(other.apiKey),
        'x-kept': 'plain value',
      },
    });
    assert.equal(res.status, 200);
    const sent = g.received.at(-1)!.headers;
    assert.equal(sent['authorization'], `Bearer ${upstreamKey}`);
    for (const name of ['x-api-key', 'api-key', 'x-note', 'x-other-key']) assert.equal(sent[name], undefined, name);
    assert.equal(sent['x-kept'], 'plain value');
    assert.ok(!JSON.stringify(sent).includes('ghk_'), JSON.stringify(sent));
  });
});
