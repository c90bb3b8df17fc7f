// An approval and a denial cast at the same instant on a review that needs one vote:
// one decides it, the other is refused (409 review_not_pending) and not kept. Both used
// to get 200, and the losing vote stayed on a review it did not decide.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Decision, Exchange, Identity } from '../../src/exchange/index.js';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

let sdk: SdkGateway;
let aliceKey: string;
let bobKey: string;

before(async () => {
  sdk = await startSdkGateway({ extraYaml: 'approvals:\n  defaults: { reviewers: [dba], holdFor: 20s }\n' });
  aliceKey = (await sdk.gateway.apiKeys.create({ name: 'alice', kind: 'human', groups: ['dba'], expiresAt: null })).token;
  bobKey = (await sdk.gateway.apiKeys.create({ name: 'bob', kind: 'human', groups: ['dba'], expiresAt: null })).token;
});

after(async () => {
  await sdk?.close();
});

const vote = async (key: string, id: string, how: 'approve' | 'deny') => {
  const res = await fetch(`${sdk.gateway.adminUrl}/api/reviews/${id}/${how}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{}' });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
};

const direct = async (name: string, id: string, how: 'approve' | 'deny') => {
  try {
    const voter: Identity = { subject: `key:${name}`, kind: 'human', groups: ['dba'], method: 'api_key', credentialId: name };
    await sdk.gateway.approvals!.vote(id, voter, how, { via: 'api' });
    return { status: 200, body: {} as Record<string, any> };
  } catch (error) {
    return { status: (error as { status: number }).status, body: { error: { code: (error as { code: string }).code } } as Record<string, any> };
  }
};

test('an approval and a denial at the same instant: one decides, the other gets 409 and is not kept', async () => {
  const approvals = sdk.gateway.approvals!;
  for (let i = 0; i < 12; i++) {
    const exchange = { id: `ex_race_${i}`, identity: { subject: 'key:carol', groups: ['ml'], kind: 'human' }, facts: { text: `race ${i}` } } as unknown as Exchange;
    const decision = { effect: 'require_approval', rules: ['prod'] } as unknown as Decision;
    const review = await approvals.open(exchange, decision, { subject: 'key:carol', apiKey: null, connection: 'openai', operation: 'chat.completions', digest: `d${i}`, policyVersion: 'v1' }, undefined);
    // Both votes go through the admin API's service in the same turn, as two requests on
    // two gateways sharing a store do: both find the review pending.
    const [approve, deny] = i % 2 === 0 ? await Promise.all([direct('alice', review.id, 'approve'), direct('bob', review.id, 'deny')]) : await Promise.all([vote(aliceKey, review.id, 'approve'), vote(bobKey, review.id, 'deny')]);
    const statuses = [approve.status, deny.status].sort();
    assert.deepEqual(statuses, [200, 409], `review ${i}: approve ${approve.status}, deny ${deny.status}`);
    const loser = approve.status === 409 ? approve : deny;
    assert.equal(loser.body.error.code, 'review_not_pending');
    const final = await approvals.get(review.id);
    assert.equal(final?.state, approve.status === 200 ? 'approved' : 'denied');
    assert.deepEqual(final?.votes.map((v) => v.vote), [approve.status === 200 ? 'approve' : 'deny'], 'only the deciding vote is kept');
  }
});
