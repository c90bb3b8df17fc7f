// The target's answer headers carry values as its body does (a redirect's query, a
// vendor header naming the user, a cookie): when a mask applies to the answer, header
// values are masked with the same detectors. Real data plane and forwarder, scripted upstream.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { MaskProfile } from '../../../src/mask/index.js';
import { startMaskingHarness, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const answerHeaders = {
  'content-type': 'application/json',
  location: '/users?email=ann@example.com&next=%2Fhome',
  'x-user-email': 'ann@example.com',
  'x-user-phone': '+1 415-555-0100',
  'set-cookie': ['theme=dark; Path=/', 'who=ann%40example.com; Path=/; HttpOnly'],
  'x-trace': 'abc123',
  'content-location': '/lookup?phone=%2B1%20415%20555%202671&ssn=123%2D45%2D6789',
};

test('with masking, Location, custom headers and Set-Cookie values are masked; headers without a value pass as they came', async () => {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
  harness.upstream((_req, _body, res) => {
    res.writeHead(302, answerHeaders);
    res.end('{"ok":true}');
  });
  const res = await fetch(`${harness.url}/login`, { redirect: 'manual' });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), '/users?email=[EMAIL]&next=%2Fhome');
  assert.equal(res.headers.get('x-user-email'), '[EMAIL]');
  assert.equal(res.headers.get('x-user-phone'), '[PHONE]');
  assert.deepEqual(res.headers.getSetCookie(), ['theme=dark; Path=/', 'who=[EMAIL]; Path=/; HttpOnly']);
  assert.equal(res.headers.get('x-trace'), 'abc123');
  // Percent-encoded values in a URL are found as well.
  assert.equal(res.headers.get('content-location'), '/lookup?phone=[PHONE]&ssn=[US_SSN]');
  assert.equal(await res.text(), '{"ok":true}');
  assert.deepEqual(harness.outcomes[0]!.maskCounts, { EMAIL: 3, PHONE: 2, US_SSN: 1 });
});

test('without masking, the headers pass as the target sent them', async () => {
  harness = await startMaskingHarness({ connectionType: 'http' });
  harness.upstream((_req, _body, res) => {
    res.writeHead(302, answerHeaders);
    res.end('{}');
  });
  const res = await fetch(`${harness.url}/login`, { redirect: 'manual' });
  assert.equal(res.headers.get('x-user-email'), 'ann@example.com');
});
