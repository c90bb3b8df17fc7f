// Values written so a person reads them and a detector would not: zero-width and other
// invisible characters inside them, full-width and math-letter forms, HTML character
// references, a JSON \u escape. Through the real data plane and forwarder, in a JSON
// answer, an HTML page and an SSE stream cut at every offset: none leaves unmasked.

import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import OpenAI from 'openai';
import type { MaskProfile } from '../../../src/mask/index.js';
import { chatChunk, startMaskingHarness, writeEvents, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const disguised: ReadonlyArray<readonly [string, string]> = [
  ['zero-width spaces in an address', 'a\u200bn\u200bn@exam\u200bple.com'],
  ['a soft hyphen and a word joiner', 'ann\u2060@example\u00ad.com'],
  ['full-width forms', 'ａｎｎ＠ｅｘａｍｐｌｅ．ｃｏｍ'],
  ['a full-width at sign and an ideographic full stop', 'ann＠example。com'],
  ['math bold letters', '𝐚𝐧𝐧@𝐞𝐱𝐚𝐦𝐩𝐥𝐞.𝐜𝐨𝐦'],
  ['full-width digits in an SSN', '１２３-４５-６７８９'],
  ['zero-width spaces in a card number', '4111\u200b1111\u200b1111\u200b1111'],
  ['non-breaking hyphens in a phone number', '(415)\u00a0555\u20112671'],
  ['a zero-width space in an AWS key', 'AKIA\u200bIOSFODNN7EXAMPLE'],
];

test('a JSON answer: every disguised value is masked, whatever the disguise', async () => {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
  harness.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    // One more, written with a JSON \u escape for the at sign.
    res.end(`{"values": ${JSON.stringify(disguised.map(([, v]) => `see ${v} now`))}, "escaped": "see ann\\u0040example.com now"}`);
  });
  const body = (await (await fetch(`${harness.url}/people`)).json()) as { values: string[]; escaped: string };
  for (const [i, [what]] of disguised.entries()) assert.match(body.values[i]!, /^see \[[A-Z_]+\] now$/, `${what}: ${body.values[i]}`);
  assert.equal(body.escaped, 'see [EMAIL] now');
});

test('an HTML page: character references that spell an address are masked', async () => {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
  harness.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<p>Mail <a href="mailto:ann&#64;example.com">ann&#x40;example&#46;com</a> or bob&commat;example.org &amp; co</p>');
  });
  const html = await (await fetch(`${harness.url}/contact`)).text();
  assert.equal(html, '<p>Mail <a href="mailto:[EMAIL]">[EMAIL]</a> or [EMAIL] &amp; co</p>');
});

test('a streamed answer: a disguised address cut across two events at every offset is masked, as whole-text masking does', async () => {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'] });
  const client = new OpenAI({ baseURL: harness.url, apiKey: 'k', maxRetries: 0 });
  for (const value of ['a\u200bn\u200bn@exam\u200bple.com', 'ann&#64;example.com']) {
    const text = `Write to ${value} today.`;
    for (let cut = 'Write to '.length + 1; cut < 'Write to '.length + value.length; cut++) {
      harness.upstream((_req, _body, res) => void writeEvents(res, [chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: text.slice(0, cut) }), chatChunk({ content: text.slice(cut) }), chatChunk({}, 'stop'), 'data: [DONE]\n\n'], 1));
      const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
      let out = '';
      for await (const event of stream) out += event.choices[0]?.delta?.content ?? '';
      assert.equal(out, 'Write to [EMAIL] today.', `${JSON.stringify(value)} cut at ${cut}`);
    }
  }
});

test('security: backslash escapes in the text (a model writing the value as source code: `ann\\u0040example.com`, `\\x40`) are masked, in a JSON answer and streamed at every offset', async () => {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'] });
  // In the answer's JSON the backslash is itself escaped: the client reads `ann\u0040example.com` as text.
  harness.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'mail = "ann\\u0040example.com"; card = "4111\\x2d1111\\x2d1111\\x2d1111"' } }] }));
  });
  const client = new OpenAI({ baseURL: harness.url, apiKey: 'k', maxRetries: 0 });
  const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.choices[0]!.message.content, 'mail = "[EMAIL]"; card = "[CREDIT_CARD]"');
  const value = 'ann\\u0040example\\x2ecom';
  const text = `Write to ${value} today.`;
  for (let cut = 'Write to '.length + 1; cut < 'Write to '.length + value.length; cut++) {
    harness.upstream((_req, _body, res) => void writeEvents(res, [chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: text.slice(0, cut) }), chatChunk({ content: text.slice(cut) }), chatChunk({}, 'stop'), 'data: [DONE]\n\n'], 1));
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let out = '';
    for await (const event of stream) out += event.choices[0]?.delta?.content ?? '';
    assert.equal(out, 'Write to [EMAIL] today.', `cut at ${cut}`);
  }
});

test('security: numbers written in the digits of other scripts (Arabic-Indic, Persian, Devanagari, Thai) are masked, in a JSON answer and streamed at every offset', async () => {
  harness = await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'] });
  // A model asked for the number "in Arabic numerals" wrote it so, and it passed unmasked.
  harness.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ choices: [{ index: 0, message: { role: 'assistant', content: 'card ٤١١١ ١١١١ ١١١١ ١١١١, ssn ५३६-९०-४३९९, tel +๔๔ ๒๐ ๗๙๔๖ ๐๙๕๘, ۵۵۵۵۵۵۵۵۵۵۵۵۴۴۴۴' } }] }));
  });
  const client = new OpenAI({ baseURL: harness.url, apiKey: 'k', maxRetries: 0 });
  const answer = await client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(answer.choices[0]!.message.content, 'card [CREDIT_CARD], ssn [US_SSN], tel [PHONE], [CREDIT_CARD]');
  const value = '٤١١١ ١١١١ ١١١١ ١١١١';
  const text = `Card ${value} now.`;
  for (let cut = 'Card '.length + 1; cut < 'Card '.length + value.length; cut++) {
    harness.upstream((_req, _body, res) => void writeEvents(res, [chatChunk({ role: 'assistant', content: '' }), chatChunk({ content: text.slice(0, cut) }), chatChunk({ content: text.slice(cut) }), chatChunk({}, 'stop'), 'data: [DONE]\n\n'], 1));
    const stream = await client.chat.completions.create({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] });
    let out = '';
    for await (const event of stream) out += event.choices[0]?.delta?.content ?? '';
    assert.equal(out, 'Card [CREDIT_CARD] now.', `cut at ${cut}`);
  }
});

test('the table of other scripts\' digits is every run of Unicode decimal digits in the BMP outside ASCII and the full-width forms', async () => {
  const { digitZeros } = await import('../../../src/mask/disguise-view.js');
  const zeros: number[] = [];
  for (let cp = 0x80; cp <= 0xffff; cp++) {
    if ((cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0xff10 && cp <= 0xff19)) continue;
    if (/\p{Nd}/u.test(String.fromCharCode(cp)) && !/\p{Nd}/u.test(String.fromCharCode(cp - 1))) zeros.push(cp);
  }
  assert.deepEqual(digitZeros, zeros);
});
