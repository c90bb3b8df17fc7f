// Gemini's `streamGenerateContent` without `alt=sse` (the REST default) streams one
// `application/json` answer, a JSON array with an element per chunk, through an `http`
// connection with masking. Held whole and masked as one JSON body, each element was
// masked apart: a value split across two elements went out raw, in pieces, a response
// guard read the pieces apart too, and nothing reached the client before the last token.

import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, test } from 'node:test';
import type { MaskProfile } from '../../../src/mask/index.js';
import { startMaskingHarness, type Harness, type HarnessOptions } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(options: Partial<HarnessOptions> = {}): Promise<Harness> {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http', ...options });
  return harness;
}

interface Part {
  text?: string;
  thought?: boolean;
  functionCall?: unknown;
}
interface GeminiChunk {
  candidates?: { index: number; content: { role: string; parts: Part[] }; finishReason?: string }[];
  usageMetadata?: { totalTokenCount: number };
  error?: { code: string; rule?: string };
}

/** A GenerateContentResponse chunk as Gemini writes it in the array: pretty-printed, CRLF line ends. */
const chunk = (parts: Part[], finishReason?: string) =>
  JSON.stringify({ candidates: [{ content: { role: 'model', parts }, index: 0, ...(finishReason ? { finishReason } : {}) }], usageMetadata: { totalTokenCount: 7 }, modelVersion: 'gemini-x' }, null, 2).replace(/\n/g, '\r\n');

/** Writes `[`, the elements separated by `,\r\n`, then `]`, each write its own TCP chunk. */
async function writeArray(res: ServerResponse, elements: readonly string[], gate?: Promise<void>): Promise<void> {
  res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
  const writes = ['[', ...elements.map((e, i) => (i === 0 ? e : `,\r\n${e}`)), ']'];
  for (const [i, w] of writes.entries()) {
    if (i === writes.length - 1 && gate) await gate;
    res.write(w);
    await new Promise((r) => setTimeout(r, 2));
  }
  res.end();
}

const post = (h: Harness, query = '') => fetch(`${h.url}/v1beta/models/gemini-x:streamGenerateContent${query}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"contents":[]}' });

/** The client's view: the parsed array, and each candidate's text (thought parts marked) joined. */
async function read(res: Response): Promise<{ raw: string; chunks: GeminiChunk[]; text: string; thoughts: string }> {
  const raw = await res.text();
  const chunks = JSON.parse(raw) as GeminiChunk[];
  const parts = chunks.flatMap((c) => c.candidates?.[0]?.content.parts ?? []);
  return { raw, chunks, text: parts.filter((p) => !p.thought && p.text !== undefined).map((p) => p.text).join(''), thoughts: parts.filter((p) => p.thought).map((p) => p.text).join('') };
}

describe('Gemini streamGenerateContent as a JSON array (no alt=sse)', () => {
  test('security: a value split across two array elements at every offset comes out masked, in a valid array', async () => {
    const h = await start();
    const value = 'jane.roe@example.com';
    for (let cut = 1; cut < value.length; cut++) {
      const text = `Write to ${value} today.`;
      const at = 'Write to '.length + cut;
      h.upstream((_req, _body, res) => void writeArray(res, [chunk([{ text: text.slice(0, at) }]), chunk([{ text: text.slice(at) }]), chunk([{ text: '' }], 'STOP')]));
      const { raw, chunks, text: joined } = await read(await post(h));
      assert.ok(!raw.includes('roe@') && !raw.includes('example.com'), `cut ${cut}: ${raw}`);
      assert.equal(joined, 'Write to [EMAIL] today.', `cut ${cut}`);
      assert.equal(chunks.at(-1)!.candidates![0]!.finishReason, 'STOP');
      assert.equal(chunks[0]!.usageMetadata!.totalTokenCount, 7, 'the rest of each chunk is kept');
    }
  });

  test('thought parts stream apart from the text; a function call is masked whole; multibyte text split across elements survives', async () => {
    const h = await start();
    h.upstream((_req, _body, res) =>
      void writeArray(res, [
        chunk([{ text: 'SSN is 123-4', thought: true }]),
        chunk([{ text: '5-6789 I think', thought: true }]),
        chunk([{ text: 'Zoë: zoë.mü' }]),
        chunk([{ text: 'ller@exämple.de 日本' }]),
        chunk([{ functionCall: { name: 'mail', args: { to: 'ann@example.com' } } }], 'STOP'),
      ]),
    );
    const { raw, chunks, text, thoughts } = await read(await post(h));
    assert.ok(!raw.includes('6789') && !raw.includes('ller@') && !raw.includes('ann@'), raw);
    assert.equal(thoughts, 'SSN is [US_SSN] I think');
    assert.equal(text, 'Zoë: [EMAIL] 日本');
    assert.deepEqual(chunks.at(-1)!.candidates![0]!.content.parts.find((p) => p.functionCall)!.functionCall, { name: 'mail', args: { to: '[EMAIL]' } });
    assert.deepEqual(h.outcomes[0]!.maskCounts, { US_SSN: 1, EMAIL: 2 });
  });

  test('latency: the first elements reach the client while the model is still writing', { timeout: 5000 }, async () => {
    const h = await start();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    h.upstream((_req, _body, res) => void writeArray(res, [chunk([{ text: 'Hello there. ' }]), chunk([{ text: 'Mail ann@example.com' }], 'STOP')], gate));
    const res = await post(h);
    const reader = res.body!.getReader();
    let first = '';
    // Everything but the closing `]` is written; it waits for the client to have read the start.
    while (!first.includes('Hello there.')) first += new TextDecoder().decode((await reader.read()).value);
    release();
    let rest = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    const chunks = JSON.parse(first + rest) as GeminiChunk[];
    assert.equal(chunks.map((c) => c.candidates![0]!.content.parts.map((p) => p.text).join('')).join(''), 'Hello there. Mail [EMAIL]');
  });

  test('an error answer (not an array) is masked whole and stays one JSON document', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      res.writeHead(400, { 'content-type': 'application/json; charset=UTF-8' });
      res.end(JSON.stringify({ error: { code: 400, message: 'Invalid value for ann@example.com', status: 'INVALID_ARGUMENT' } }, null, 2));
    });
    const res = await post(h);
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { error: { code: 400, message: 'Invalid value for [EMAIL]', status: 'INVALID_ARGUMENT' } });
  });

  test('a response guard reads the text across elements: the array ends with an error element, still valid JSON', async () => {
    const h = await start({ guard: (text) => (/AKIA[0-9A-Z]{16}/.test(text) ? { rule: 'no-aws-keys', message: 'The answer contained an AWS key.' } : undefined) });
    h.upstream((_req, _body, res) => void writeArray(res, [chunk([{ text: 'Key: AKIAIOSF' }]), chunk([{ text: 'ODNN7EXAMPLE ok' }]), chunk([{ text: '.' }], 'STOP')]));
    const { raw, chunks } = await read(await post(h));
    assert.ok(!raw.includes('ODNN7'), raw);
    assert.deepEqual(chunks.at(-1)!.error, { message: 'The answer contained an AWS key.', type: 'permission_error', code: 'response_blocked', param: null, rule: 'no-aws-keys' });
    assert.equal(h.outcomes[0]!.errorCode, 'response_blocked');
  });

  test('blocked in the very first chunk (the `[` with it): the client still reads a valid array holding the error', async () => {
    const h = await start({ guard: (text) => (/AKIA[0-9A-Z]{16}/.test(text) ? { rule: 'no-aws-keys', message: 'The answer contained an AWS key.' } : undefined) });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`[${chunk([{ text: 'Key: AKIAIOSFODNN7EXAMPLE' }], 'STOP')}]`);
    });
    const { raw, chunks } = await read(await post(h));
    assert.ok(!raw.includes('AKIA'), raw);
    assert.equal(chunks.length, 1);
    assert.equal(chunks[0]!.error!.code, 'response_blocked');
  });

  test('with alt=sse the answer is an event stream, masked as one (unchanged)', async () => {
    const h = await start();
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(`data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text: 'ann@example.com' }] }, index: 0, finishReason: 'STOP' }] })}\r\n\r\n`);
    });
    const raw = await (await post(h, '?alt=sse')).text();
    assert.match(raw, /^data: .*\[EMAIL\]/);
  });

  test('Vertex AI paths (publisher model, tuned endpoint, express mode), read from the path the target gets: the array streams and a split value is masked', async () => {
    const cases = [
      { basePath: '/v1/projects/p/locations/us-central1', path: '/publishers/google/models/gemini-2.0-flash:streamGenerateContent' },
      { basePath: '/v1beta1', path: '/projects/p/locations/europe-west4/endpoints/1234567890:streamGenerateContent' },
      { basePath: '/v1/publishers/google/models', path: '/gemini-2.0-flash%3AstreamGenerateContent' },
    ];
    for (const { basePath, path } of cases) {
      const h = await start({ basePath });
      let reached = '';
      h.upstream((req, _body, res) => {
        reached = req.url ?? '';
        void writeArray(res, [chunk([{ text: 'Write to jane.r' }]), chunk([{ text: 'oe@example.com today.' }]), chunk([{ text: '' }], 'STOP')]);
      });
      const res = await fetch(`${h.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"contents":[]}' });
      const { raw, text } = await read(res);
      assert.ok(reached.startsWith(basePath), reached);
      assert.ok(!raw.includes('roe@'), `${path}: ${raw}`);
      assert.equal(text, 'Write to [EMAIL] today.', path);
      await harness?.close();
      harness = undefined;
    }
  });

  test('security: the query the target gets decides, not the caller\'s: a target pinned to alt=json answers an array even when the caller asks alt=sse, and a split value is masked', async () => {
    const h = await start({ baseQuery: 'alt=json' });
    let reached = '';
    h.upstream((req, _body, res) => {
      reached = req.url ?? '';
      void writeArray(res, [chunk([{ text: 'Write to jane.r' }]), chunk([{ text: 'oe@example.com today.' }]), chunk([{ text: '' }], 'STOP')]);
    });
    const { raw, text } = await read(await post(h, '?alt=sse'));
    assert.match(reached, /\?alt=json$/);
    assert.ok(!raw.includes('roe@'), raw);
    assert.equal(text, 'Write to [EMAIL] today.');
  });

  test('a JSON array answer on a path that is not a streaming method is held and masked whole, as it came', async () => {
    const h = await start();
    const body = '[{"note":"mail jane.roe@example.com"},{"note":"ok"}]';
    h.upstream((_req, _body, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
    const res = await fetch(`${h.url}/v1beta/models/gemini-x:generateContent`, { method: 'POST', body: '{}' });
    assert.deepEqual(await res.json(), [{ note: 'mail [EMAIL]' }, { note: 'ok' }]);
  });
});
