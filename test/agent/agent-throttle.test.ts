// Failed-authentication throttling at the agent endpoint: after the limit of refused
// agent keys from one address, a link is refused with 429 and Retry-After before its key
// is checked, the right key included; the throttle is one audit event.

import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { connectPath } from '../../src/agent/protocol.js';
import { agentKey, startTunnelGateway, type TunnelGateway } from './helpers.js';

describe('agent endpoint throttling', () => {
  let gw: TunnelGateway;

  before(async () => {
    gw = await startTunnelGateway(`  - name: plain
    type: http
    via: agent:edge
    access: { groups: [ml] }
`, { agentsExtra: 'identity:\n  authThrottle:\n    perAddress: { limit: 2, window: 1h }\n' });
  });
  after(async () => gw?.close());

  /** Opens a control stream with `key`; resolves with the answer's status, Retry-After and body. */
  async function link(key: string): Promise<{ status: number; retryAfter: string | undefined; body: string }> {
    const session = connect(gw.agentsUrl, { ca: gw.pki.ca });
    try {
      const stream = session.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${key}` }, { endStream: false });
      const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      let body = '';
      for await (const chunk of stream) body += String(chunk);
      return { status: Number(headers[':status']), retryAfter: headers['retry-after'] as string | undefined, body };
    } finally {
      session.close();
    }
  }

  test('two wrong keys, then the right one is refused with 429 until the window ends; one auth.throttled event', async () => {
    // Fixed 1 h windows: stay clear of a boundary.
    const into = Date.now() % 3_600_000;
    if (into > 3_570_000) await new Promise((resolve) => setTimeout(resolve, 3_600_000 - into + 200));
    const key = await agentKey(gw, 'edge-1', ['agent:edge']);
    const wrong = `${key.slice(0, -43)}${'Z'.repeat(43)}`;
    for (let i = 0; i < 2; i++) assert.equal((await link(wrong)).status, 401);
    const refused = await link(key);
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.retryAfter) >= 1, `retry-after ${refused.retryAfter}`);
    assert.equal((JSON.parse(refused.body) as { error: { code: string } }).error.code, 'auth_throttled');
    const events = await gw.gateway.store.db.selectFrom('audit_events').select(['kind', 'target', 'details']).where('kind', 'in', ['auth.throttled', 'auth.refused']).orderBy('seq').execute();
    // Two refusals on record, then the throttle (chained as the second failure reached the limit); the refused link is neither.
    assert.deepEqual(events.map((e) => e.kind).sort(), ['auth.refused', 'auth.refused', 'auth.throttled']);
    const throttled = events.find((e) => e.kind === 'auth.throttled')!;
    assert.equal(throttled.target, 'address:127.0.0.1');
    assert.equal((JSON.parse(throttled.details) as { listener: string }).listener, 'agents');
  });
});
