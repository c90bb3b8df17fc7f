// End to end: the real gatehouse process with a masking profile on the demo
// connection, read with the official openai client. The demo upstream echoes the
// prompt ("Demo reply to: …"), so PII put in the prompt comes back in the answer,
// streamed one word per event; none of it may reach the client or the recording.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-target-secret';
const values = ['jane.roe@example.com', '(415) 555-2671', '123-45-6789', '4111 1111 1111 1111', 'DE89 3704 0044 0532 0130 00', 'AKIAIOSFODNN7EXAMPLE', '10.1.2.3'];

describe('masking, end to end through the gateway process', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let client: OpenAI;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 5 });
    const yaml = demoConnectionYaml(upstream.url).replace('    access: { groups: [ml] }', '    access: { groups: [ml] }\n    masking: [pii]') + `masking:
  profiles:
    pii:
      operator: redact
      denyList: [{ name: CLIENT, terms: [Иванов] }]
`;
    gateway = await startGatewayProcess(yaml, { env: { UPSTREAM_KEY: upstreamKey } });
    client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
    adminKey = await gateway.createKey('auditor', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('a streamed answer read with the openai client contains no raw value, and neither does the recording', async () => {
    const prompt = `Contact ${values[0]} or ${values[1]}; SSN ${values[2]}; card ${values[3]}; IBAN ${values[4]}; key ${values[5]} from ${values[6]}.`;
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] }).withResponse();
    let text = '';
    let events = 0;
    for await (const event of stream) {
      events++;
      text += event.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'Demo reply to: Contact [EMAIL] or [PHONE]; SSN [US_SSN]; card [CREDIT_CARD]; IBAN [IBAN]; key [AWS_ACCESS_KEY] from [IP_ADDRESS].');
    assert.ok(events > 10, 'the answer still arrives as a stream of events');
    for (const value of values) assert.ok(!text.includes(value), `${value} reached the client`);

    const id = response.headers.get('gatehouse-exchange-id')!;
    const record = (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as Record<string, any>;
    assert.equal(record['response'].text, text);
    for (const value of values) assert.ok(!JSON.stringify(record['response']).includes(value), `${value} reached the recorded answer`);
    assert.deepEqual(record['maskCounts'], { EMAIL: 1, PHONE: 1, US_SSN: 1, CREDIT_CARD: 1, IBAN: 1, AWS_ACCESS_KEY: 1, IP_ADDRESS: 1 });
  });

  test('a config snippet with a short password and a connection string, and a deny-listed name in Cyrillic, streamed: neither the client nor sessions show sees them', async () => {
    const prompt = 'Клиент Иванов: DATABASE_URL=postgres://app:pa$$w0rd!@db.internal:5432/app and db_password = "Vq8#mT2z!pL9@xR4"';
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] }).withResponse();
    let text = '';
    for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
    assert.equal(text, 'Demo reply to: Клиент [CLIENT]: DATABASE_URL=postgres://app:[SECRET]@db.internal:5432/app and db_password = "[SECRET]"');
    const { stdout } = await gateway.cli(['sessions', 'show', response.headers.get('gatehouse-exchange-id')!]);
    assert.match(stdout, /^masked {4}CLIENT 1, SECRET 2$/m);
    for (const value of ['Иванов', 'pa$$w0rd', 'Vq8#', 'mT2z']) assert.ok(!stdout.split('--- answer ---')[1]!.includes(value), `${value} is in the recorded answer`);
  });

  test('a phone number glued to Chinese or Japanese text is masked, streamed and not', async () => {
    // It reached the client in clear: a `+` glued to a letter did not start a number.
    const prompt = '请致电+86 138 0013 8000，或者電話番号は+81 3-1234-5678です';
    const expected = 'Demo reply to: 请致电[PHONE]，或者電話番号は[PHONE]です';
    const stream = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: prompt }] });
    let text = '';
    for await (const event of stream) text += event.choices[0]?.delta?.content ?? '';
    assert.equal(text, expected);
    const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] });
    assert.equal(answer.choices[0]!.message.content, expected);
  });

  test('a non-streamed answer is masked too', async () => {
    const answer = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `mail ${values[0]} now` }] });
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: mail [EMAIL] now');
  });
});

describe('request scrubbing, end to end: the record keeps the scrubbed prompt', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let client: OpenAI;
  let adminKey: string;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 0 });
    const yaml = demoConnectionYaml(upstream.url).replace('    access: { groups: [ml] }', '    access: { groups: [ml] }\n    masking: [prompts, answers]') + `masking:
  profiles:
    prompts: { applyTo: request, entities: [US_SSN, CREDIT_CARD] }
    answers: { entities: [EMAIL] }
audit:
  raw: { enabled: true, key: "\${RAW_KEY}", revealGroups: [admins] }
`;
    gateway = await startGatewayProcess(yaml, { env: { UPSTREAM_KEY: upstreamKey, RAW_KEY: 'b'.repeat(64) } });
    client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: await gateway.createKey('bot', ['ml']), maxRetries: 0 });
    adminKey = await gateway.createKey('auditor', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  test('the model, the recorded request and prompt text see the scrubbed values; the raw prompt and answer are only sealed; sessions show prints the counts', async () => {
    const ssn = '536-22-8014';
    const card = '5555-5555-5555-4444';
    const { data: answer, response } = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `SSN ${ssn}, card ${card}, mail ana@example.es` }] }).withResponse();
    assert.equal(answer.choices[0]!.message.content, 'Demo reply to: SSN [US_SSN], card [CREDIT_CARD], mail [EMAIL]');
    const id = response.headers.get('gatehouse-exchange-id')!;
    const headers = { authorization: `Bearer ${adminKey}` };
    const record = (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers })).json()) as Record<string, any>;
    for (const value of [ssn, card]) assert.ok(!JSON.stringify(record['request']).includes(value), `${value} reached the recorded request`);
    assert.equal(record['request'].promptText, 'SSN [US_SSN], card [CREDIT_CARD], mail ana@example.es');
    assert.deepEqual(record['maskCounts'], { US_SSN: 1, CREDIT_CARD: 1, EMAIL: 1 });
    assert.ok(!JSON.stringify(record['response']).includes('ana@example.es'), 'the recorded answer is the masked one');
    // audit.raw still keeps the request as the caller sent it and the answer as the model gave it, sealed.
    const raw = (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}/reveal`, { method: 'POST', headers })).json()) as { request: string; response: string };
    assert.ok(raw.request.includes(ssn));
    assert.ok(raw.response.includes('mail ana@example.es'), `the sealed answer is the target's own: ${raw.response}`);

    const { stdout } = await gateway.cli(['sessions', 'show', id]);
    assert.match(stdout, /^masked {4}US_SSN 1, CREDIT_CARD 1, EMAIL 1$/m);
    assert.ok(!stdout.includes(ssn) && !stdout.includes(card), 'sessions show prints no raw value');
  });
});
