// End to end: the real gatehouse process with a masking profile on an `http`
// connection in front of an upstream speaking Anthropic's Messages API (SSE) and
// Ollama's NDJSON, answering with PII in headers, in member names, split across events
// and lines, and disguised with zero-width characters. None of it may reach the client
// or the recording.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const ev = (type: string, data: Record<string, unknown> = {}) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;

describe('masking native model APIs, end to end through the gateway process', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let key: string;
  let adminKey: string;

  before(async () => {
    upstream = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url!.startsWith('/v1/messages')) {
          res.writeHead(200, { 'content-type': 'text/event-stream', 'x-user-email': 'ann@example.com', location: '/u?email=ann%40example.com' });
          const events = [
            ev('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', content: [], model: 'claude-x', usage: { input_tokens: 1, output_tokens: 1 } } }),
            ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
            ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Reach jane.r' } }),
            ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'oe@example.com or b\u200bob@exam' } }),
            ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'ple.org.' } }),
            ev('content_block_stop', { index: 0 }),
            ev('content_block_start', { index: 1, content_block: { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} } }),
            ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '{"ssn": "123-4' } }),
            ev('content_block_delta', { index: 1, delta: { type: 'input_json_delta', partial_json: '5-6789"}' } }),
            ev('content_block_stop', { index: 1 }),
            ev('message_delta', { delta: { stop_reason: 'tool_use' }, usage: { output_tokens: 9 } }),
            ev('message_stop'),
          ];
          let i = 0;
          const next = () => (i < events.length ? (res.write(events[i++]), setTimeout(next, 3)) : res.end());
          next();
          return;
        }
        if (req.url!.startsWith('/api/chat')) {
          res.writeHead(200, { 'content-type': 'application/x-ndjson' });
          res.write(`${JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: 'call (415) 555-' }, done: false })}\n`);
          setTimeout(() => res.end(`${JSON.stringify({ model: 'llama3', message: { role: 'assistant', content: '2671 please' }, done: true })}\n`), 10);
          return;
        }
        if (req.url!.startsWith('/api/generate')) {
          // Ollama sends a token per line: the address reaches the gateway in six lines.
          res.writeHead(200, { 'content-type': 'application/x-ndjson' });
          const tokens = ['Write', ' to', ' jane', '.roe', '@exam', 'ple', '.com', ' today.'];
          const lines = [...tokens.map((response) => ({ model: 'llama3', created_at: 't', response, done: false })), { model: 'llama3', created_at: 't', response: '', done: true, done_reason: 'stop', context: [1, 2], eval_count: 8 }];
          let i = 0;
          const next = () => (i < lines.length ? (res.write(`${JSON.stringify(lines[i++])}\n`), setTimeout(next, 2)) : res.end());
          next();
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"orders_by_customer": {"ann@example.com": 3, "bob@example.org": 1}}');
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
connections:
  - name: models
    type: http
    target: ${target}
    access: { groups: [ml] }
    masking: [pii]
masking:
  profiles:
    pii: { operator: redact }
`);
    key = await gateway.createKey('bot', ['ml']);
    adminKey = await gateway.createKey('auditor', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((r) => upstream?.close(r));
  });

  const raws = ['jane.r', 'oe@example', 'bob@', 'ple.org', '123-4', '5-6789', 'ann@', 'ann%40', '555-', '2671'];

  test('an Anthropic SSE answer: text split across deltas (one address disguised), tool input and headers are masked; so is the record', async () => {
    const res = await fetch(`${gateway.url}/c/models/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"stream":true}' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-user-email'), '[EMAIL]');
    assert.equal(res.headers.get('location'), '/u?email=[EMAIL]');
    const raw = await res.text();
    for (const value of raws) assert.ok(!raw.includes(value), `${value} reached the client: ${raw}`);
    const blocks = new Map<number, string>();
    for (const block of raw.split('\n\n').filter((b) => b.includes('content_block_delta'))) {
      const data = JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)) as { index: number; delta: { text?: string; partial_json?: string } };
      blocks.set(data.index, (blocks.get(data.index) ?? '') + (data.delta.text ?? data.delta.partial_json ?? ''));
    }
    assert.equal(blocks.get(0), 'Reach [EMAIL] or [EMAIL].');
    assert.deepEqual(JSON.parse(blocks.get(1)!), { ssn: '[US_SSN]' });
    const record = (await (await fetch(`${gateway.adminUrl}/api/sessions/${res.headers.get('gatehouse-exchange-id')}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as Record<string, unknown>;
    for (const value of raws) assert.ok(!JSON.stringify(record).includes(value), `${value} reached the record`);
    assert.deepEqual(record['maskCounts'], { EMAIL: 4, US_SSN: 1 });
  });

  test('Ollama NDJSON answers (/api/chat, and /api/generate a token per line) with a value split across lines, and a JSON answer keyed by addresses, are masked', async () => {
    const chat = await (await fetch(`${gateway.url}/c/models/api/chat`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{}' })).text();
    assert.equal(chat.trim().split('\n').map((l) => (JSON.parse(l) as { message: { content: string } }).message.content).join(''), 'call [PHONE] please');
    const generate = await (await fetch(`${gateway.url}/c/models/api/generate`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: '{"model":"llama3","prompt":"x"}' })).text();
    for (const value of ['jane', '.roe', '@exam', 'ple.com']) assert.ok(!generate.includes(value), `${value} reached the client: ${generate}`);
    assert.ok(generate.endsWith('\n'), 'every line ends');
    const lines = generate.trim().split('\n').map((l) => JSON.parse(l) as { response: string; done: boolean; context?: number[]; eval_count?: number });
    assert.equal(lines.map((l) => l.response).join(''), 'Write to [EMAIL] today.');
    assert.deepEqual(lines.map((l) => l.done), [...lines.slice(1).map(() => false), true], 'the done line is last');
    assert.deepEqual([lines.at(-1)!.context, lines.at(-1)!.eval_count], [[1, 2], 8]);
    const json = await (await fetch(`${gateway.url}/c/models/reports`, { headers: { authorization: `Bearer ${key}` } })).json();
    assert.deepEqual(json, { orders_by_customer: { '[EMAIL]': 3, '[EMAIL]#2': 1 } });
  });
});
