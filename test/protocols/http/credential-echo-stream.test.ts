// The agent's form of the credential scan (a stream): headers and body scrubbed, a
// compressed answer decoded, an unknown coding refused, an empty HEAD answer left alone.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { ForwardResponse } from '../../../src/forward/index.js';
import { credentialEchoForms, markerFor } from '../../../src/protocols/http/credential-echo.js';
import { scrubbedAnswer } from '../../../src/protocols/http/credential-echo-stream.js';

const secret = 'sk-agent-held-0123456789abcdef';
const echo = credentialEchoForms({ scheme: 'Bearer', secret })!;
const answer = (headers: ForwardResponse['headers'], chunks: Buffer[]): ForwardResponse => ({ status: 200, headers, body: Readable.from(chunks) });

describe('credential echo, as a stream (agent side)', () => {
  test('a body split inside the secret and a header: replaced, Content-Length kept', async () => {
    const text = `{"authorization":"Bearer ${secret}"}`;
    const cut = text.indexOf('held');
    const counts: Record<string, number> = {};
    const out = scrubbedAnswer(answer({ 'content-length': String(text.length), 'x-echo': secret }, [Buffer.from(text.slice(0, cut)), Buffer.from(text.slice(cut))]), echo, counts, true);
    assert.ok(!('error' in out));
    assert.equal((await buffer(out.body)).toString(), `{"authorization":"Bearer ${markerFor(secret.length)}"}`);
    assert.deepEqual(out.headers, { 'content-length': String(text.length), 'x-echo': markerFor(secret.length) });
    assert.equal(counts['target_credential'], 2);
  });

  test('gzip: decoded and scrubbed, Content-Encoding and Content-Length dropped; zstd refused; an empty HEAD answer passes', async () => {
    const body = gzipSync(`key=${secret}`);
    const out = scrubbedAnswer(answer({ 'content-encoding': 'gzip', 'content-length': String(body.length) }, [body]), echo, {}, true);
    assert.ok(!('error' in out));
    assert.deepEqual(out.headers, {});
    assert.equal((await buffer(out.body)).toString(), `key=${markerFor(secret.length)}`);
    assert.deepEqual(scrubbedAnswer(answer({ 'content-encoding': 'zstd' }, []), echo, {}, true), { error: 'cannot scan a zstd-encoded answer for the target credential' });
    const head = scrubbedAnswer(answer({ 'content-encoding': 'gzip' }, []), echo, {}, false);
    assert.ok(!('error' in head));
    assert.equal((await buffer(head.body)).length, 0);
  });
});
