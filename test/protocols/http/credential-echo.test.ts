// The credential echo scrubber on its own: the forms it looks for, length-preserving
// replacement, and a value split across chunks at every offset.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { credentialEchoForms, CredentialEchoScrubber, credentialMarker, markerFor, scrubHeaders } from '../../../src/protocols/http/credential-echo.js';

const secret = 'sk-live/Ab"c\\dé+f g!0123456789abcdefXYZ';

function scrubAll(chunks: readonly Buffer[], echo = credentialEchoForms({ scheme: 'Bearer', secret })!): { out: string; count: number; sizes: number[] } {
  const counts: Record<string, number> = {};
  const scrubber = new CredentialEchoScrubber(echo, counts);
  const parts = chunks.map((c) => scrubber.push(c));
  parts.push(scrubber.end());
  return { out: Buffer.concat(parts).toString('utf8'), count: counts['target_credential'] ?? 0, sizes: parts.map((p) => p.length) };
}

describe('credential echo scrubber', () => {
  test('the forms: as is, JSON-escaped (with \\/ and \\uXXXX), percent-encoded', () => {
    const echo = credentialEchoForms({ scheme: 'Bearer', secret })!;
    for (const form of [secret, JSON.stringify(secret).slice(1, -1), 'sk-live\\/Ab\\"c\\\\d\\u00e9+f g!0123456789abcdefXYZ', encodeURIComponent(secret), encodeURIComponent(secret).replaceAll('%20', '+')]) {
      assert.ok(echo.texts.includes(form), form);
    }
    assert.equal(credentialEchoForms({ scheme: 'Bearer', secret: '' }), undefined);
    assert.equal(credentialEchoForms(undefined), undefined);
  });

  test('Basic: the base64 secret and the decoded user:password pair', () => {
    const pair = 'svc-user:p@ss/word-1234';
    const echo = credentialEchoForms({ scheme: 'Basic', secret: Buffer.from(pair).toString('base64') })!;
    assert.ok(echo.texts.includes(pair));
    assert.ok(echo.texts.includes(encodeURIComponent(pair)));
    const { out, count } = scrubAll([Buffer.from(`{"user":"${pair}"}`)], echo);
    assert.equal(out, `{"user":"${markerFor(pair.length)}"}`);
    assert.equal(count, 1);
  });

  test('replacement keeps the length; the marker is ASCII without quote, backslash or newline', () => {
    const body = `{"headers":{"Authorization":"Bearer ${JSON.stringify(secret).slice(1, -1)}"},"q":"${encodeURIComponent(secret)}"}`;
    const { out, count } = scrubAll([Buffer.from(body)]);
    assert.equal(Buffer.byteLength(out), Buffer.byteLength(body));
    assert.equal(count, 2);
    assert.ok(!out.includes('sk-live'));
    assert.ok(out.includes(credentialMarker));
    JSON.parse(out);
    assert.equal(markerFor(5), '*****');
    assert.equal(markerFor(12), '[REDACTED]**');
  });

  test('a chunk without the secret is released at once, the same buffer', () => {
    const echo = credentialEchoForms({ scheme: 'Bearer', secret })!;
    const scrubber = new CredentialEchoScrubber(echo, {});
    const chunk = Buffer.from('data: {"choices":[{"delta":{"content":"hello"}}]}\n\n');
    assert.equal(scrubber.push(chunk), chunk);
  });

  test('security: a secret split across two chunks at every offset is replaced; held bytes are released when no match follows', () => {
    for (const form of [secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)]) {
      const body = Buffer.from(`data: {"echo":"${form}"}\n\n`);
      const expected = `data: {"echo":"${markerFor(Buffer.byteLength(form))}"}\n\n`;
      for (let cut = 1; cut < body.length; cut++) {
        const { out, count } = scrubAll([body.subarray(0, cut), body.subarray(cut)]);
        assert.equal(out, expected, `cut at ${cut}`);
        assert.equal(count, 1);
      }
    }
    // A prefix that does not continue: held, then released whole with the next chunk.
    const { out, count, sizes } = scrubAll([Buffer.from('abc sk-li'), Buffer.from('ve but not the key\n\n')]);
    assert.equal(out, 'abc sk-live but not the key\n\n');
    assert.equal(count, 0);
    assert.deepEqual(sizes, [4, 25, 0]);
  });

  test('security: a secret cut into one-byte chunks, and at the end of the answer', () => {
    const body = Buffer.from(`x${secret}y${secret}`);
    const { out, count } = scrubAll([...body].map((b) => Buffer.from([b])));
    const m = markerFor(Buffer.byteLength(secret));
    assert.equal(out, `x${m}y${m}`);
    assert.equal(count, 2);
    // A trailing prefix that never completes leaves with end().
    assert.equal(scrubAll([Buffer.from('tail sk-live/A')]).out, 'tail sk-live/A');
  });

  test('header values are scrubbed too', () => {
    const echo = credentialEchoForms({ scheme: 'Bearer', secret: 'sk-abcdefghijklmnopqrstuvwxyz' })!;
    const counts: Record<string, number> = {};
    const headers = { 'x-echo': 'Bearer sk-abcdefghijklmnopqrstuvwxyz', 'set-cookie': ['a=1', 'k=sk-abcdefghijklmnopqrstuvwxyz'], other: 'fine' };
    const out = scrubHeaders(headers, echo, counts);
    assert.deepEqual(out, { 'x-echo': `Bearer ${markerFor(29)}`, 'set-cookie': ['a=1', `k=${markerFor(29)}`], other: 'fine' });
    assert.equal(counts['target_credential'], 2);
    assert.equal(scrubHeaders({ other: 'fine' }, echo, counts).other, 'fine');
  });
});
