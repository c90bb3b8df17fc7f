// Answers whose label does not say what they are: a JSONL file (JSON Lines) under
// octet-stream, `application/jsonl` or no label, an event stream or an Ollama NDJSON
// stream labelled `application/json` or not at all. Held and masked as what they are,
// through the real data plane and forwarder: masked as plain text, a JSON `\u` escape
// or a value split across events or lines went out raw.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import type { MaskProfile } from '../../../src/mask/index.js';
import { chatChunk, startMaskingHarness, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function answer(contentType: string | undefined, body: string): Promise<string> {
  harness ??= await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
  harness.upstream((_req, _body, res) => {
    res.removeHeader('content-type');
    res.writeHead(200, contentType === undefined ? {} : { 'content-type': contentType });
    // Two writes: the answer arrives in two chunks.
    const cut = Math.floor(body.length / 2);
    res.write(body.slice(0, cut));
    setTimeout(() => res.end(body.slice(cut)), 5);
  });
  return (await fetch(`${harness.url}/files/file-1/content`)).text();
}

test('a JSONL file with a JSON \\u escape in a value is masked line by line, under any label', async () => {
  const jsonl = '{"custom_id":"r1","body":{"text":"mail ann\\u0040example.com"}}\n{"custom_id":"r2","body":{"text":"ssn 123-45-6789"}}\n';
  for (const type of ['application/octet-stream', 'application/jsonl', 'application/json', undefined]) {
    const text = await answer(type, jsonl);
    assert.equal(text, '{"custom_id":"r1","body":{"text":"mail [EMAIL]"}}\n{"custom_id":"r2","body":{"text":"ssn [US_SSN]"}}\n', `${type}`);
  }
});

test('an event stream labelled application/json, or not labelled, is masked as an event stream: a value split across events is masked', async () => {
  const sse = chatChunk({ content: 'mail jane.roe@exa' }) + chatChunk({ content: 'mple.com ok' }) + chatChunk({}, 'stop') + 'data: [DONE]\n\n';
  for (const type of ['application/json', undefined, '']) {
    const text = await answer(type, sse);
    assert.ok(!text.includes('jane.roe') && !text.includes('mple.com'), `${type}: ${text}`);
    const content = text.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => (JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]!.delta.content ?? '').join('');
    assert.equal(content, 'mail [EMAIL] ok');
  }
});

test('an Ollama stream labelled application/json is masked as NDJSON: a value split across lines is masked', async () => {
  const lines = [{ model: 'm', message: { role: 'assistant', content: 'call +1 415 555' }, done: false }, { model: 'm', message: { role: 'assistant', content: ' 2671 now' }, done: false }, { model: 'm', message: { role: 'assistant', content: '' }, done: true }];
  const text = await answer('application/json', lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  assert.ok(!text.includes('2671'), text);
  assert.equal(text.trim().split('\n').map((l) => (JSON.parse(l) as { message: { content: string } }).message.content).join(''), 'call [PHONE] now');
});

test('a text answer that only looks like an event stream (YAML starting with id:) keeps its form: its label says text', async () => {
  const yaml = 'id: 42\n: not a comment in YAML\n\ndata:\n  email: ann@example.com\n';
  assert.equal(await answer('application/yaml', yaml), 'id: 42\n: not a comment in YAML\n\ndata:\n  email: [EMAIL]\n');
});
