// Masking on the data plane, in process (real sockets, real forwarder, scripted
// upstream): connection defaults ∪ obligations, request scrubbing, fail-closed on a
// forced masker error, the response-guard hook, obligations.maxResponseBytes, and
// what the recording keeps.

import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, test } from 'node:test';
import OpenAI from 'openai';
import { answerColumns } from '../../../src/audit/record-columns.js';
import { MaskPlanner, type MaskPlan, type MaskProfile } from '../../../src/mask/index.js';
import { chatChunk, startMaskingHarness, writeEvents, type Harness, type HarnessOptions } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };
const scrub: MaskProfile = { name: 'scrub', operator: 'redact', keepLast: 4, applyTo: 'request', entities: ['EMAIL', 'US_SSN'] };
const cards: MaskProfile = { name: 'cards', operator: 'partial', keepLast: 4, applyTo: 'response', entities: ['CREDIT_CARD'] };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function start(options: HarnessOptions): Promise<Harness> {
  harness = await startMaskingHarness(options);
  return harness;
}

const jsonAnswer = (content: string) => JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }] });

describe('data plane masking', () => {
  test('a JSON answer is masked by the connection default profile, and recorded masked with counts', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(jsonAnswer('Write to jane.roe@example.com or call (415) 555-2671.'));
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(answer.choices[0]!.message.content, 'Write to [EMAIL] or call [PHONE].');
    const outcome = h.outcomes[0]!;
    assert.ok(!outcome.responseBody!.includes('jane.roe'), 'the recording keeps the masked body');
    // A plain JSON answer is recorded whole and read for its text off the relaying thread.
    assert.equal(outcome.unreadAnswer, 'openai-json');
    assert.equal(answerColumns(outcome.unreadAnswer, outcome.responseBody).response_text, 'Write to [EMAIL] or call [PHONE].');
    assert.deepEqual(outcome.maskCounts, { EMAIL: 1, PHONE: 1 });
  });

  test('a JSON answer is masked in place: a 64-bit id, a number as written and the upstream\'s whitespace reach the client unchanged', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    const upstreamBody = '{"id": 1234567890123456789, "price": 1.10, "note": "mail jane.roe@example.com",\n  "tags": ["a\\u00e9"]}';
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(upstreamBody);
    });
    const res = await fetch(`${h.url}/things/1`, { headers: { 'content-type': 'application/json' } });
    assert.equal(await res.text(), '{"id": 1234567890123456789, "price": 1.10, "note": "mail [EMAIL]",\n  "tags": ["a\\u00e9"]}');
  });

  test('a member name holding a value is masked too, and the names stay unique: the answer is still valid JSON', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"by_customer": {"ann@example.com": {"orders": 3}, "bob@example.org": {"orders": 1}, "[EMAIL]": {"orders": 0}}, "total": 4}');
    });
    const res = await fetch(`${h.url}/reports/orders`);
    const text = await res.text();
    assert.ok(!text.includes('ann@') && !text.includes('bob@'), text);
    assert.deepEqual(JSON.parse(text), { by_customer: { '[EMAIL]#2': { orders: 3 }, '[EMAIL]#3': { orders: 1 }, '[EMAIL]': { orders: 0 } }, total: 4 });
    assert.deepEqual(h.outcomes[0]!.maskCounts, { EMAIL: 2 });
  });

  test('hash: one value written different ways gets one hash (e-mail case, phone formats, card separators), another value another', async () => {
    const hashed: MaskProfile = { name: 'hashed', operator: 'hash', hashKey: 'k-0123456789abcdef', keepLast: 4, applyTo: 'response' };
    const h = await start({ profiles: [hashed], connectionMasking: ['hashed'] });
    const same = [
      ['Ann@Example.com', 'ann@example.com', 'ANN%40example.com'],
      ['+1 415-555-0100', '(415) 555-0100', '415.555.0100', '1-415-555-0100'],
      ['+44 (0)20 7946 0958', '0044 20 7946 0958'],
      ['4111 1111 1111 1111', '4111-1111-1111-1111', '4111111111111111'],
    ];
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ groups: same.map((g) => g.map((v) => `see ${v}`)), other: 'see bob@example.com' }));
    });
    const body = (await (await fetch(`${h.url}/people`)).json()) as { groups: string[][]; other: string };
    for (const [i, group] of body.groups.entries()) {
      for (const v of group) assert.match(v, /^see \[(EMAIL|PHONE|CREDIT_CARD):[0-9a-f]{12}\]$/);
      assert.equal(new Set(group).size, 1, `${same[i]!.join(' / ')} hash alike: ${group.join(' ')}`);
    }
    assert.notEqual(body.other, body.groups[0]![0]);
  });

  test('obligations.mask adds profiles to the connection defaults (union)', async () => {
    const h = await start({ profiles: [pii, cards], connectionMasking: ['cards'], obligations: { mask: ['pii'] } });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(jsonAnswer('card 4111 1111 1111 1111, mail a.b@example.org'));
    });
    const res = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    // Both profiles cover CREDIT_CARD: the stronger operator (redact over partial) wins.
    assert.equal(body.choices[0]!.message.content, 'card [CREDIT_CARD], mail [EMAIL]');
  });

  test('an obligation naming an unknown profile fails closed before forwarding', async () => {
    const h = await start({ profiles: [pii], obligations: { mask: ['nope'] } });
    let called = false;
    h.upstream((_req, _body, res) => {
      called = true;
      res.end('{}');
    });
    const res = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    assert.equal(res.status, 500);
    const body = (await res.json()) as { error: { code: string } };
    assert.equal(body.error.code, 'masking_profile_unknown');
    assert.equal(called, false);
  });

  test('request scrubbing: the upstream receives the prompt masked', async () => {
    const h = await start({ profiles: [scrub], connectionMasking: ['scrub'] });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(jsonAnswer('ok'));
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'My SSN is 123-45-6789 and mail bob@example.com' }] });
    const sent = JSON.parse(h.lastUpstreamBody()!) as { messages: { content: string }[] };
    assert.equal(sent.messages[0]!.content, 'My SSN is [US_SSN] and mail [EMAIL]');
    assert.ok(!h.lastUpstreamBody()!.includes('123-45-6789'));
    assert.deepEqual(h.outcomes[0]!.maskCounts, { US_SSN: 1, EMAIL: 1 });
  });

  test('security: request scrubbing reads a text body that is not UTF-8 (Latin-1) and refuses one in a charset it cannot read', async () => {
    // One Latin-1 byte (`Zoë` from a legacy client) made the whole body "binary": it
    // reached the target with every value in it.
    const h = await start({ profiles: [scrub], connectionMasking: ['scrub'], connectionType: 'http' });
    const received: Buffer[] = [];
    h.upstream((_req, body, res) => {
      received.push(body);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const latin1 = Buffer.from('Zo\u00eb <zoe@example.com>, SSN 123-45-6789', 'latin1');
    for (const type of ['text/plain; charset=iso-8859-1', 'text/plain', 'application/json']) {
      const body = type === 'application/json' ? Buffer.from('{"note":"Zo\u00eb zoe@example.com"}', 'latin1') : latin1;
      const res = await fetch(`${h.url}/notes`, { method: 'PUT', headers: { 'content-type': type }, body });
      assert.equal(res.status, 200, type);
      const sent = received.at(-1)!;
      assert.ok(!sent.toString('latin1').includes('zoe@example.com'), `${type}: ${sent.toString('latin1')}`);
      assert.ok(sent.includes(0xeb), `${type}: the Latin-1 byte is written back as it was`);
    }
    assert.equal(received[0]!.toString('latin1'), 'Zo\u00eb <[EMAIL]>, SSN [US_SSN]');
    // A charset the scrubber cannot write back: refused, not forwarded.
    const before = received.length;
    for (const [type, body] of [
      ['text/plain; charset=utf-16le', Buffer.from('mail zoe@example.com', 'utf16le')],
      ['application/json', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('{"note":"zoe@example.com"}', 'utf16le')])],
    ] as const) {
      const res = await fetch(`${h.url}/notes`, { method: 'PUT', headers: { 'content-type': type }, body });
      assert.equal(res.status, 502, type);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'masking_failed');
    }
    assert.equal(received.length, before);
    // A binary upload (not text by its type) still passes byte for byte.
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xeb, 0x20, ...Buffer.from(' zoe@example.com')]);
    assert.equal((await fetch(`${h.url}/blob`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: binary })).status, 200);
    assert.deepEqual(received.at(-1), binary);
  });

  test('a streamed answer is masked across chunks and stays parseable by the openai client', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: 'Mail jane' }), chatChunk({ content: '.roe@exam' }), chatChunk({ content: 'ple.com, SSN 123-4' }), chatChunk({ content: '5-6789 ok' }), chatChunk({}, 'stop'), 'data: [DONE]\n\n']);
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Mail [EMAIL], SSN [US_SSN] ok');
    assert.equal(h.outcomes[0]!.responseText, 'Mail [EMAIL], SSN [US_SSN] ok');
    assert.ok(!h.outcomes[0]!.responseBody!.includes('6789'));
  });

  test('tool-call arguments are held until the call is complete, then sent masked', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    const call = (args: string, extra: Record<string, unknown> = {}) => chatChunk({ tool_calls: [{ index: 0, ...extra, function: { ...(extra['function'] as object), arguments: args } }] });
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [chatChunk({ role: 'assistant', content: null }), call('', { id: 'call_1', type: 'function', function: { name: 'send' } }), call('{"to":"jane.r'), call('oe@example.com","n":1}'), chatChunk({}, 'tool_calls'), 'data: [DONE]\n\n']);
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const stream = client.chat.completions.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: true });
    const final = await stream.finalChatCompletion();
    const toolCall = final.choices[0]!.message.tool_calls![0]! as { function: { name: string; arguments: string } };
    assert.equal(toolCall.function.name, 'send');
    assert.deepEqual(JSON.parse(toolCall.function.arguments), { to: '[EMAIL]', n: 1 });
  });

  test('fail closed: a forced masker error mid-stream ends the stream with an error event, never raw text', async () => {
    // A planner whose masker throws when it sees FORCE_ERROR (after text was already released).
    class FailingPlanner extends MaskPlanner {
      override plan(names: readonly string[], direction: 'request' | 'response'): MaskPlan | undefined {
        const inner = super.plan(names, direction);
        if (!inner) return inner;
        return { ...inner, find: (text) => (text.includes('FORCE_ERROR') ? fail() : inner.find(text)), holdBack: (text) => inner.holdBack(text) };
      }
    }
    const fail = (): never => {
      throw new Error('forced masker failure');
    };
    const h = await start({ planner: new FailingPlanner([pii]), connectionMasking: ['pii'] });
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [chatChunk({ role: 'assistant', content: 'Hello, ' }), chatChunk({ content: 'FORCE_ERROR ssn 123-45-6789' }), chatChunk({}, 'stop')]);
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
    }, /could not be masked/);
    assert.equal(text, 'Hello, ');
    assert.equal(h.outcomes[0]!.errorCode, 'masking_failed');
    assert.match(h.outcomes[0]!.errorDetail!, /forced masker failure/);
    assert.equal(h.outcomes[0]!.complete, false);
    assert.ok(!(h.outcomes[0]!.responseBody ?? '').includes('6789'), 'nothing raw recorded either');
  });

  test('fail closed: an SSE event larger than 1 MiB ends the stream with masking_failed', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    const huge = chatChunk({ content: `ssn 123-45-6789 ${'y'.repeat(1024 * 1024 + 10)}` });
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [chatChunk({ role: 'assistant', content: 'Hi ' }), huge.slice(0, 600_000), huge.slice(600_000), chatChunk({}, 'stop')], 20);
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
    }, /could not be masked/);
    assert.ok(!text.includes('6789'));
    assert.equal(h.outcomes[0]!.errorCode, 'masking_failed');
  });

  test('a gzip answer sent despite Accept-Encoding: identity is decoded and masked (sent uncompressed); fail closed: a coding the gateway cannot decode is refused with masking_failed', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
      res.end(gzipSync(jsonAnswer('jane.roe@example.com')));
    });
    const decoded = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    assert.equal(decoded.status, 200);
    assert.equal(decoded.headers.get('content-encoding'), null);
    assert.ok((await decoded.text()).includes('[EMAIL]'));
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'zstd' });
      res.end(jsonAnswer('jane.roe@example.com'));
    });
    const res = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    assert.equal(res.status, 502);
    assert.deepEqual(((await res.json()) as { error: { code: string } }).error.code, 'masking_failed');
  });

  test('security: an answer in another declared charset (UTF-16, Latin-1) is decoded with it, masked, and sent as UTF-8; an unknown charset fails closed', async () => {
    // Read as UTF-8, a UTF-16 answer's NUL bytes hid every value: it went out unmasked.
    const h = await start({ profiles: [pii], connectionMasking: ['pii'] });
    const cases: Array<[string, Buffer, string]> = [
      ['application/json; charset=UTF-16LE', Buffer.from('{"note":"mail jane.roe@example.com"}', 'utf16le'), '{"note":"mail [EMAIL]"}'],
      ['text/plain; charset="iso-8859-1"', Buffer.from('Zoë: jane.roe@example.com', 'latin1'), 'Zoë: [EMAIL]'],
      ['application/json; charset=utf-8', Buffer.from('{"n":"Zoë jane.roe@example.com"}'), '{"n":"Zoë [EMAIL]"}'],
    ];
    for (const [contentType, body, expected] of cases) {
      h.upstream((_req, _body, res) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(body);
      });
      const res = await fetch(`${h.url}/things/1`);
      assert.equal(res.status, 200, contentType);
      assert.equal(res.headers.get('content-type'), contentType.replace(/charset=.*/i, 'charset=utf-8'));
      assert.equal(await res.text(), expected, contentType);
    }
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=x-made-up' });
      res.end('jane.roe@example.com');
    });
    const res = await fetch(`${h.url}/things/1`);
    assert.equal(res.status, 502);
    const text = await res.text();
    assert.ok(!text.includes('jane.roe'));
    assert.match(text, /"code":"masking_failed"/);
  });

  test('security: an application/octet-stream answer that is text (a JSONL file of answers) is masked; one that is binary passes byte for byte, streamed', async () => {
    // It was passed unmasked by its type alone.
    const h = await start({ profiles: [pii], connectionMasking: ['pii'], maxBufferBytes: 4096 });
    const jsonl = `${jsonAnswer('mail jane.roe@example.com')}\n${jsonAnswer('call (415) 555-2671')}\n`;
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(jsonl);
    });
    let res = await fetch(`${h.url}/files/file-1/content`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), jsonl.replace('jane.roe@example.com', '[EMAIL]').replace('(415) 555-2671', '[PHONE]'));

    // Binary, larger than the masking buffer, with an address in clear inside: not held, not changed.
    const binary = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00]), Buffer.from('jane.roe@example.com'), Buffer.alloc(64 * 1024, 7)]);
    for (const contentType of ['application/octet-stream', 'audio/mpeg']) {
      h.upstream((_req, _body, res) => {
        res.writeHead(200, { 'content-type': contentType });
        res.end(binary);
      });
      res = await fetch(`${h.url}/files/file-2/content`);
      assert.equal(res.status, 200, contentType);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(binary), `${contentType} passes unchanged`);
    }

    // Text over the masking buffer: cut, never sent raw.
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(`jane.roe@example.com ${'z'.repeat(8192)}`);
    });
    // The headers went out (a binary answer streams), so the answer is cut: fetch fails or the body is short.
    const body = await fetch(`${h.url}/files/file-3/content`).then((r) => r.text()).catch(() => '');
    assert.ok(!body.includes('jane.roe'), 'no raw text reached the client');
  });

  test('fail closed: a JSON answer larger than the masking buffer is refused, not passed raw', async () => {
    const h = await start({ profiles: [pii], connectionMasking: ['pii'], maxBufferBytes: 1024 });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(jsonAnswer(`jane.roe@example.com ${'z'.repeat(4096)}`));
    });
    const res = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    assert.equal(res.status, 502);
    const text = await res.text();
    assert.ok(!text.includes('jane.roe'));
    assert.match(text, /"code":"masking_failed"/);
  });

  test('the response guard blocks a streamed answer before the offending text is released', async () => {
    const seen: string[] = [];
    const guard = (text: string) => {
      seen.push(text);
      return text.includes('Project Falcon') ? { rule: 'no-codenames', message: 'The answer mentions a code name.' } : undefined;
    };
    const h = await start({ guard });
    h.upstream((_req, _body, res) => {
      void writeEvents(res, [chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: 'About Project ' }), chatChunk({ content: 'Falcon: it ships' }), chatChunk({}, 'stop')]);
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let text = '';
    await assert.rejects(async () => {
      for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
    }, /mentions a code name/);
    assert.ok(!text.includes('Falcon'));
    assert.equal(seen.at(-1), 'About Project Falcon: it ships');
    assert.equal(h.outcomes[0]!.errorCode, 'response_blocked');
  });

  test('the response guard refuses a JSON answer with 403 and the rule', async () => {
    const h = await start({ guard: (text) => (text.includes('Falcon') ? { rule: 'no-codenames', message: 'The answer mentions a code name.' } : undefined) });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(jsonAnswer('Project Falcon ships in May'));
    });
    const res = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), { error: { message: 'The answer mentions a code name.', type: 'permission_error', code: 'response_blocked', param: null, rule: 'no-codenames' } });
  });

  test('obligations.maxResponseBytes lowers the connection limit', async () => {
    const h = await start({ obligations: { maxResponseBytes: 100 } });
    const body = jsonAnswer('x'.repeat(500));
    h.upstream((req, _body, res) => {
      // With a declared length the answer is refused before a byte is sent; without one
      // it is cut at the limit.
      res.writeHead(200, req.url?.includes('declared') ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.end(body);
    });
    const res = await fetch(`${h.url}/chat/completions?declared`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'response_too_large');
    await assert.rejects(async () => {
      const cut = await fetch(`${h.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"m","messages":[]}' });
      await cut.text();
    });
    assert.equal(h.outcomes[1]!.errorCode, 'response_too_large');
  });

  test('embeddings: block refuses, float16 and round reduce precision for float and base64 answers', async () => {
    const vector = [0.123456789, -0.987654321, 0.5, 0.000123];
    const answer = (b64: boolean) => {
      const buf = Buffer.alloc(16);
      vector.forEach((v, i) => buf.writeFloatLE(v, i * 4));
      return JSON.stringify({ object: 'list', data: [{ object: 'embedding', index: 0, embedding: b64 ? buf.toString('base64') : vector }], model: 'e', usage: { prompt_tokens: 1, total_tokens: 1 } });
    };
    const round: MaskProfile = { name: 'round', operator: 'redact', keepLast: 4, applyTo: 'response', embeddings: { mode: 'round', decimals: 2, noise: 0 } };
    const block: MaskProfile = { name: 'block', operator: 'redact', keepLast: 4, applyTo: 'response', embeddings: { mode: 'block', decimals: 2, noise: 0 } };
    const h = await start({ profiles: [round, block], connectionMasking: ['round'] });
    h.upstream((_req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answer(JSON.parse(body.toString()).encoding_format === 'base64'));
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    // The openai client asks for base64 by default and decodes it.
    const viaBase64 = await client.embeddings.create({ model: 'e', input: 'hi' });
    assert.deepEqual(viaBase64.data[0]!.embedding.map((v) => Math.round(v * 1e4) / 1e4), [0.12, -0.99, 0.5, 0]);
    const viaFloat = await client.embeddings.create({ model: 'e', input: 'hi', encoding_format: 'float' });
    assert.deepEqual(viaFloat.data[0]!.embedding, [0.12, -0.99, 0.5, 0]);
  });

  test('embeddings: a block profile from an obligation refuses with embeddings_blocked', async () => {
    const block: MaskProfile = { name: 'block', operator: 'redact', keepLast: 4, applyTo: 'response', embeddings: { mode: 'block', decimals: 2, noise: 0 } };
    const h = await start({ profiles: [block], obligations: { mask: ['block'] } });
    h.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }] }));
    });
    const client = new OpenAI({ baseURL: h.url, apiKey: 'k', maxRetries: 0 });
    await assert.rejects(client.embeddings.create({ model: 'e', input: 'hi', encoding_format: 'float' }), (error: unknown) => {
      assert.ok(error instanceof OpenAI.PermissionDeniedError);
      assert.equal(error.code, 'embeddings_blocked');
      return true;
    });
  });
});
