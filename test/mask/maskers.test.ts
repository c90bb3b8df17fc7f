// Operators, JSON field paths, the responses-API stream, embeddings transforms and the
// masking config section.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config/index.js';
import { maskJsonText, maskJsonValue, maskPlannerFromConfig, MaskPlanner, SseMasker, StreamTextMasker, toFloat16, transformVector, applyFindings, type MaskProfile } from '../../src/mask/index.js';

const profile = (p: Partial<MaskProfile>): MaskProfile => ({ name: 'p', operator: 'redact', keepLast: 4, applyTo: 'response', ...p });
const planOf = (...profiles: MaskProfile[]) => new MaskPlanner(profiles).plan(profiles.map((p) => p.name), 'response')!;
const maskText = (text: string, plan = planOf(profile({}))) => applyFindings(text, plan.find(text), {});

describe('operators', () => {
  test('redact replaces a value with its type label', () => {
    assert.equal(maskText('mail jane@example.com'), 'mail [EMAIL]');
  });

  test('partial keeps the last N letters and digits and the separators', () => {
    const plan = planOf(profile({ operator: 'partial', keepLast: 4 }));
    assert.equal(maskText('SSN 123-45-6789, card 4111 1111 1111 1111', plan), 'SSN ***-**-6789, card **** **** **** 1111');
  });

  test('hash is stable under one key and differs under another', () => {
    const a = planOf(profile({ operator: 'hash', hashKey: 'key-one' }));
    const b = planOf(profile({ operator: 'hash', hashKey: 'key-two' }));
    const first = maskText('jane@example.com', a);
    assert.match(first, /^\[EMAIL:[0-9a-f]{12}\]$/);
    assert.equal(maskText('again jane@example.com', a), `again ${first}`);
    assert.notEqual(maskText('jane@example.com', b), first);
    assert.notEqual(maskText('john@example.com', a), first);
  });

  test('drop removes a JSON field holding a finding (null inside arrays)', () => {
    const plan = planOf(profile({ operator: 'drop' }));
    const out = JSON.parse(maskJsonText(JSON.stringify({ name: 'Jane', email: 'jane@example.com', tags: ['ok', 'ssn 123-45-6789'] }), plan, {}));
    assert.deepEqual(out, { name: 'Jane', tags: ['ok', null] });
  });

  test('entities restrict a profile; the stronger operator wins where profiles overlap', () => {
    const cardsOnly = profile({ name: 'cards', entities: ['CREDIT_CARD'], operator: 'partial' });
    assert.equal(maskText('4111 1111 1111 1111 jane@example.com', planOf(cardsOnly)), '**** **** **** 1111 jane@example.com');
    assert.equal(maskText('4111 1111 1111 1111 jane@example.com', planOf(cardsOnly, profile({ name: 'all' }))), '[CREDIT_CARD] [EMAIL]');
  });
});

describe('JSON masking', () => {
  const body = JSON.stringify({ id: 'x-1', user: { email: 'a@example.com', note: 'call 415-555-2671' }, items: [{ email: 'b@example.com' }], email_count: 2 });

  test('masks string values only, everywhere by default', () => {
    assert.deepEqual(JSON.parse(maskJsonText(body, planOf(profile({})), {})), { id: 'x-1', user: { email: '[EMAIL]', note: 'call [PHONE]' }, items: [{ email: '[EMAIL]' }], email_count: 2 });
  });

  test('field paths restrict masking: dotted keys, [] for array elements, * and **', () => {
    assert.deepEqual(JSON.parse(maskJsonText(body, planOf(profile({ fields: ['user.email'] })), {})).user, { email: '[EMAIL]', note: 'call 415-555-2671' });
    const arrays = JSON.parse(maskJsonText(body, planOf(profile({ fields: ['items[].email'] })), {}));
    assert.deepEqual([arrays.items[0].email, arrays.user.email], ['[EMAIL]', 'a@example.com']);
    assert.deepEqual(JSON.parse(maskJsonText(body, planOf(profile({ fields: ['user.*'] })), {})).user, { email: '[EMAIL]', note: 'call [PHONE]' });
    const deep = JSON.parse(maskJsonText(body, planOf(profile({ fields: ['**.email'] })), {}));
    assert.deepEqual([deep.user.email, deep.items[0].email, deep.user.note], ['[EMAIL]', '[EMAIL]', 'call 415-555-2671']);
  });

  test('security: a card number written as a JSON number is masked and becomes a string; ids, timestamps and other numbers stay as written', () => {
    // `"card": 4111111111111111` went out as it came: only string values were looked at.
    const source = '{"card": 4111111111111111, "amex": 378282246310005, "cards": [5555555555554444], "id": 1234567890123456789, "ts": 1700000000000, "n": 4111111111111112, "price": 4111111111111111.5}';
    const counts = {};
    assert.equal(maskJsonText(source, planOf(profile({})), counts), '{"card": "[CREDIT_CARD]", "amex": "[CREDIT_CARD]", "cards": ["[CREDIT_CARD]"], "id": 1234567890123456789, "ts": 1700000000000, "n": 4111111111111112, "price": 4111111111111111.5}');
    assert.deepEqual(counts, { CREDIT_CARD: 3 });
    assert.equal(maskJsonText('{"card": 4111111111111111}', planOf(profile({ operator: 'partial', keepLast: 4 })), {}), '{"card": "************1111"}');
    assert.equal(maskJsonText('{"card": 4111111111111111, "name": "x"}', planOf(profile({ operator: 'drop' })), {}), '{"name": "x"}');
    assert.deepEqual(maskJsonValue({ card: 4111111111111111, ts: 1700000000000 }, planOf(profile({})), {}), { card: '[CREDIT_CARD]', ts: 1700000000000 });
  });
});

describe('streaming', () => {
  test('a stream masker holds a word until the next delimiter and never releases part of a value', () => {
    const counts = {};
    const m = new StreamTextMasker(planOf(profile({})), counts);
    assert.equal(m.push('Hello'), '');
    assert.equal(m.push(', mail ja'), 'Hello, mail ');
    assert.equal(m.push('ne@example'), '');
    assert.equal(m.push('.com now'), '[EMAIL] ');
    assert.equal(m.end(), 'now');
    assert.deepEqual(counts, { EMAIL: 1 });
    assert.throws(() => m.push('x'), /push after end/);
  });

  test('only what could still become an entity is held: a word, a digit run the next character may continue, an address in progress', () => {
    // Each case: the pieces, and what each push releases.
    const cases: [string, string][][] = [
      // A word may still be an e-mail local part until something follows it.
      [['Hello', ''], [', how', 'Hello, '], [' are', 'how '], ['?', 'are?']],
      // A list number: `1.` may still become `1.2.3.4`; `1. O` cannot.
      [['1', ''], ['.', ''], [' Open', '1. ']],
      // `I` followed by a space is no IBAN, no number, no address.
      [['I', ''], [' can', 'I '], ["'t", ''], [' help', "can't "]],
      // A colon after a word cannot start an IPv6 address; after `10` it can.
      [['Note:', 'Note:'], [' at 10:', ' at '], ['30,', '10:30,']],
      // Digit groups joined by single spaces are held until the run ends.
      [['call +1 415', 'call '], [' 555 ', ''], ['2671 now', '[PHONE] ']],
      // An address is held while its domain may still grow.
      [['mail jane', 'mail '], ['@example', ''], ['.com', ''], ['. Thanks', '[EMAIL]. ']],
      // An IBAN in groups of four, and the start of a PEM marker.
      [['IBAN DE89 ', 'IBAN '], ['3704 0044 0532 0130 00 ok', '[IBAN] '], ['--', ''], [' done', 'ok-- ']],
      // A code path is not a key; after "secret" a token is held.
      [['see /usr/lib/', 'see /usr/lib/'], [' secret=/aB3', ' secret='], ['dE5fG7hJ9kL1mN3pQ5rS7tU9vW.', ''], [' ok', '[SECRET]. ']],
    ];
    for (const steps of cases) {
      const m = new StreamTextMasker(planOf(profile({})), {});
      for (const [piece, released] of steps) assert.equal(m.push(piece), released, `after ${JSON.stringify(piece)} in ${JSON.stringify(steps.map((s) => s[0]).join(''))}`);
    }
  });

  test('responses API: output_text deltas are masked across events and done/completed events masked whole', () => {
    const ev = (type: string, fields: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...fields })}\n\n`;
    const loc = { item_id: 'msg_1', output_index: 0, content_index: 0 };
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const full = 'Mail jane@example.com now';
    let out = '';
    for (const e of [ev('response.output_text.delta', { ...loc, delta: 'Mail ja' }), ev('response.output_text.delta', { ...loc, delta: 'ne@example.com n' }), ev('response.output_text.delta', { ...loc, delta: 'ow' }), ev('response.output_text.done', { ...loc, text: full }), ev('response.completed', { response: { output: [{ content: [{ type: 'output_text', text: full }] }] } })]) {
      out += masker.push(Buffer.from(e));
    }
    out += masker.end();
    assert.ok(!out.includes('jane'));
    const events = out.trim().split('\n\n').map((block) => ({ event: block.split('\n')[0], data: JSON.parse(block.split('\n')[1]!.slice(6)) }));
    const deltas = events.filter((e) => e.data.type === 'response.output_text.delta').map((e) => e.data.delta).join('');
    assert.equal(deltas, 'Mail [EMAIL] now');
    assert.equal(events.find((e) => e.data.type === 'response.output_text.done')!.data.text, 'Mail [EMAIL] now');
    assert.ok(events.every((e) => e.event === `event: ${e.data.type}`), 'each event keeps its event: line');
  });
});

describe('embeddings transforms', () => {
  test('round, float16 and calibrated noise', () => {
    assert.deepEqual(transformVector([0.123456, -0.98765], { mode: 'round', decimals: 3, noise: 0 }), [0.123, -0.988]);
    assert.equal(toFloat16(0.1), 0.0999755859375);
    assert.equal(toFloat16(1), 1);
    assert.equal(toFloat16(65504), 65504);
    const v = Array.from({ length: 512 }, (_, i) => Math.sin(i));
    const noisy = transformVector(v, { mode: 'noise', decimals: 0, noise: 0.1 });
    const dot = v.reduce((s, x, i) => s + x * noisy[i]!, 0);
    const cos = dot / (Math.hypot(...v) * Math.hypot(...noisy));
    // Noise of 0.1 × the norm keeps the cosine near 1/sqrt(1.01) ≈ 0.995, and changes every component.
    assert.ok(cos > 0.98 && cos < 0.9999, `cosine ${cos}`);
    assert.ok(noisy.every((x, i) => x !== v[i]));
  });
});

describe('masking config', () => {
  const base = (masking: string, connectionMasking = '') => `connections:
  - name: demo
    type: openai
    target: http://127.0.0.1:9/v1
    access: { groups: [ml] }
${connectionMasking}
masking:
${masking}
`;
  const issues = (yaml: string, env: NodeJS.ProcessEnv = {}) => {
    try {
      parseConfig(yaml, 'g.yaml', env);
      return [];
    } catch (error) {
      return (error as ConfigError).issues;
    }
  };

  test('a profile with defaults, resolved hash key, and a connection default', () => {
    const config = parseConfig(base(`  profiles:\n    pii: { operator: hash, hashKey: "\${MASK_KEY}" }`, '    masking: [pii]'), 'g.yaml', { MASK_KEY: 'k1-0123456789abcdef' });
    assert.deepEqual(config.masking.profiles['pii'], { operator: 'hash', keepLast: 4, hashKey: 'k1-0123456789abcdef', applyTo: 'response', customEntities: [], denyList: [], allowList: [], minScore: 0.5 });
    assert.deepEqual(config.connections[0]!.masking, ['pii']);
    assert.ok(maskPlannerFromConfig(config.masking).has('pii'));
  });

  test('a profile for embeddings only (entities: []) masks no text, and does not widen another profile\'s fields', () => {
    const config = parseConfig(
      base('  profiles:\n    no-raw-vectors: { entities: [], embeddings: { mode: float16 } }\n    cards: { entities: [CREDIT_CARD], operator: partial, fields: ["choices[].message.content"] }', '    masking: [no-raw-vectors, cards]'),
      'g.yaml',
      {},
    );
    const planner = maskPlannerFromConfig(config.masking);
    const vectorsOnly = planner.plan(['no-raw-vectors'], 'response')!;
    assert.equal(vectorsOnly.embeddings?.mode, 'float16');
    assert.deepEqual(vectorsOnly.find('mail jane@example.com, card 4111 1111 1111 1111'), []);
    assert.equal(vectorsOnly.holdBack('mail jane'), 'mail jane'.length, 'nothing held back for detection');
    const both = planner.plan(['no-raw-vectors', 'cards'], 'response')!;
    const answer = JSON.stringify({ id: '4111 1111 1111 1111', choices: [{ message: { content: 'card 4111 1111 1111 1111, mail jane@example.com' } }] });
    assert.deepEqual(JSON.parse(maskJsonText(answer, both, {})), { id: '4111 1111 1111 1111', choices: [{ message: { content: 'card **** **** **** 1111, mail jane@example.com' } }] });
  });

  test('errors name their path: unknown profile, re2-refused pattern, hash without key, unknown entity', () => {
    assert.deepEqual(issues(base('  profiles:\n    pii: {}', '    masking: [pii, nope]')), ['connections[0].masking[1]: no masking profile named "nope" in masking.profiles']);
    assert.deepEqual(issues(base('  profiles:\n    p:\n      customEntities: [{ name: REPEAT, pattern: "(a)\\\\1" }]')), ['masking.profiles.p.customEntities[0].pattern: is not a valid re2 pattern (invalid escape sequence: \\1; re2 has no backreferences or lookaround)']);
    // The reason is re2's own, so a typo is told apart from an unsupported feature.
    assert.deepEqual(issues(base('  profiles:\n    p:\n      customEntities: [{ name: ACCT, pattern: "ACCT-[0-9{6}" }]')), ['masking.profiles.p.customEntities[0].pattern: is not a valid re2 pattern (missing ]: [0-9{6}; re2 has no backreferences or lookaround)']);
    assert.deepEqual(issues(base('  profiles:\n    p:\n      customEntities: [{ name: ACCT, pattern: "x{1001}" }]')), ['masking.profiles.p.customEntities[0].pattern: is not a valid re2 pattern (invalid repetition size: {1001}; re2 has no backreferences or lookaround)']);
    assert.deepEqual(issues(base('  profiles:\n    p: { operator: hash }')), ['masking.profiles.p.hashKey: is required when operator is "hash" (a secret reference, e.g. ${MASK_HASH_KEY})']);
    // A short key was accepted: one known address and its hash are enough to find it.
    assert.deepEqual(issues(base('  profiles:\n    p: { operator: hash, hashKey: "${SHORT_KEY}" }'), { SHORT_KEY: 'k1' }), ['masking.profiles.p.hashKey: is 2 characters; a hash key needs at least 16 (e.g. openssl rand -hex 32), or it can be guessed from one known value and its hash']);
    assert.match(issues(base('  profiles:\n    p: { entities: [EMAIL, SHOE_SIZE] }'))[0]!, /^masking\.profiles\.p\.entities\[1\]: unknown entity type "SHOE_SIZE"/);
    // Each deny-list item's own error, where a union said "does not match any accepted form".
    assert.deepEqual(issues(base('  profiles:\n    p: { denyList: ["", Falcon] }')), ['masking.profiles.p.denyList[0]: a term must not be empty']);
    assert.deepEqual(issues(base('  profiles:\n    p: { denyList: [{ name: codename, terms: [x], extra: 1 }, Falcon] }')), [
      'masking.profiles.p.denyList[0].name: must be UPPER_SNAKE_CASE (e.g. CODENAME)',
      'masking.profiles.p.denyList[0]: unknown key "extra"',
      'masking.profiles.p.denyList[1]: is a term, but other items are { name, terms } lists: use one form',
    ]);
    // Any case, as in policy conditions (`email` was refused twice over, with two messages).
    assert.deepEqual(issues(base('  profiles:\n    p: { entities: [email, us_ssn, shoe_size] }')), [
      'masking.profiles.p.entities[2]: unknown entity type "SHOE_SIZE" (built-in: EMAIL, PHONE, US_SSN, CREDIT_CARD, IBAN, IP_ADDRESS, AWS_ACCESS_KEY, AWS_SECRET_KEY, GITHUB_TOKEN, SLACK_TOKEN, OPENAI_KEY, ANTHROPIC_KEY, GATEHOUSE_KEY, JWT, PRIVATE_KEY, SECRET; or a customEntities/denyList name)',
    ]);
  });
});

describe('plain-text SSE (not OpenAI JSON)', () => {
  test('a value split across two text events is masked, and each released event is well formed', () => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    let out = masker.push(Buffer.from('data: mail jane.r\n\n'));
    out += masker.push(Buffer.from('data: oe@example.com ok\n\n'));
    out += masker.end();
    assert.ok(!out.includes('jane'));
    assert.ok(out.endsWith('\n\n'));
    const text = out.trim().split('\n\n').map((block) => block.split('\n').map((l) => l.replace(/^data: /, '')).join('\n')).join('');
    assert.equal(text, 'mail [EMAIL] ok');
  });

  test('a piece that happens to parse as JSON (a bare number) stays part of the running text', () => {
    // `+45 32 12 34 56` cut so that pieces are bare numbers: each once went out on its own, unmasked and out of order.
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    let out = '';
    for (const piece of ['tel +4', '5', ' 32 12 ', '34', ' 5', '6, ok', 'true', ' [1]', ' done']) out += masker.push(Buffer.from(`data: ${piece}\n\n`));
    out += masker.push(Buffer.from('data: [DONE]\n\n'));
    out += masker.end();
    const blocks = out.trim().split('\n\n');
    assert.equal(blocks.at(-1), 'data: [DONE]', 'held text is released before the end marker');
    const text = blocks.slice(0, -1).map((block) => block.split('\n').map((l) => l.replace(/^data: /, '')).join('\n')).join('');
    assert.equal(text, 'tel [PHONE], oktrue [1] done');
  });
});

describe('SseMasker, fields other than data', () => {
  test('security: an entity in an event: or id: field is masked (those lines were passed as they came)', () => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const out = masker.push(Buffer.from('event: bob@example.com\nid: 123-45-6789\ndata: {"choices":[]}\n\n')) + masker.end();
    assert.doesNotMatch(out, /bob@example\.com|123-45-6789/);
    assert.match(out, /^event: \[EMAIL\]\nid: \[US_SSN\]\ndata: /);
    const plain = new SseMasker({ plan: planOf(profile({})), counts: {} });
    assert.equal(plain.push(Buffer.from('event: response.output_text.delta\nid: 42\ndata: {"x":1}\n\n')), 'event: response.output_text.delta\nid: 42\ndata: {"x":1}\n\n');
  });
});

describe('SseMasker, line endings', () => {
  test('security: events whose lines end in CR alone, or CRLF, are cut as events: an address split across two is masked whole, at any byte cut', () => {
    // With CR-only line ends no event boundary was found: each delta was masked alone and `jane.r` went out.
    const chunk = (content: string | null, finish: string | null = null) => JSON.stringify({ id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta: content === null ? {} : { content }, finish_reason: finish }] });
    const events = [chunk('mail jane.r'), chunk('oe@example.com ok'), chunk(null, 'stop')];
    for (const eol of ['\r', '\r\n', '\n']) {
      const wire = Buffer.from([...events.map((e) => `data: ${e}${eol}${eol}`), `data: [DONE]${eol}${eol}`].join(''));
      for (let cut = 0; cut <= wire.length; cut++) {
        const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
        const out = masker.push(wire.subarray(0, cut)) + masker.push(wire.subarray(cut)) + masker.end();
        const text = out.split('\n\n').filter((e) => e.startsWith('data: {')).map((e) => JSON.parse(e.slice(6)).choices[0].delta.content ?? '').join('');
        assert.equal(text, 'mail [EMAIL] ok', `${JSON.stringify(eol)}, cut at ${cut}`);
        assert.ok(out.endsWith('data: [DONE]\n\n'), out);
        assert.doesNotMatch(out, /\r/);
      }
    }
    // A CR at the end of one piece and the LF at the start of the next are one line end.
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    assert.equal(masker.push(Buffer.from('event: a\r')) + masker.push(Buffer.from('\ndata: {"x":1}\r')) + masker.push(Buffer.from('\n')) + masker.push(Buffer.from('\n')), 'event: a\ndata: {"x":1}\n\n');
  });
});

describe('SseMasker, JSON events of other APIs', () => {
  test('an event that is not a chat or responses event is masked in its own text: a 64-bit id and the data lines stay as sent', () => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const out = masker.push(Buffer.from('event: update\ndata: {"id": 1234567890123456789,\ndata:  "who": "bob@example.com"}\n\n')) + masker.end();
    assert.equal(out, 'event: update\ndata: {"id": 1234567890123456789,\ndata:  "who": "[EMAIL]"}\n\n');
  });
});

describe('SseMasker, JSON events of no known API', () => {
  const events = (out: string) => out.trim().split('\n\n').filter((b) => b !== 'data: [DONE]').map((b) => JSON.parse(b.replace(/^data: /, '')) as Record<string, unknown>);

  test('security: a value split across two events under a streamed key is masked; ids and types pass whole, in every event; the tail goes out before [DONE] in an event like the last', () => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    let out = masker.push(Buffer.from('data: {"type":"text-delta","id":"msg-1","delta":"Write to bob.r"}\n\n'));
    out += masker.push(Buffer.from('data: {"type":"text-delta","id":"msg-1","delta":"oe@example.com"}\n\n'));
    out += masker.push(Buffer.from('data: [DONE]\n\n')) + masker.end();
    assert.ok(!out.includes('bob') && !out.includes('example.com'), out);
    const all = events(out);
    assert.deepEqual(all.map((e) => [e['type'], e['id']]), [['text-delta', 'msg-1'], ['text-delta', 'msg-1'], ['text-delta', 'msg-1']]);
    assert.equal(all.map((e) => e['delta']).join(''), 'Write to [EMAIL]');
    assert.ok(out.endsWith('data: [DONE]\n\n'));
  });

  test('a stream of a known API is not guessed at: a responses-API `response.completed` text is masked whole, in its own event', () => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const completed = { type: 'response.completed', response: { id: 'resp_1', output: [{ type: 'message', content: [{ type: 'output_text', text: 'Mail bob@example.com.' }] }] } };
    const out = masker.push(Buffer.from(`data: ${JSON.stringify({ type: 'response.created', response: { id: 'resp_1' } })}\n\ndata: ${JSON.stringify(completed)}\n\n`)) + masker.end();
    const last = events(out).at(-1) as { response: { output: [{ content: [{ text: string }] }] } };
    assert.equal(last.response.output[0].content[0].text, 'Mail [EMAIL].');
    assert.equal(events(out).length, 2);
  });
});

describe('SseMasker, chat deltas whose text is not a string', () => {
  test('security: delta.content as a list of parts (Mistral reasoning models) and an object reasoning are masked, not passed as they came', () => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const chunk = (delta: object) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`;
    const out = masker.push(Buffer.from(chunk({ content: [{ type: 'thinking', thinking: [{ type: 'text', text: 'ask bob@example.com' }] }, { type: 'text', text: 'mail alice@example.com now' }] }) + chunk({ reasoning: { text: 'carol@example.com' }, content: null }))) + masker.end();
    assert.ok(!out.includes('@example.com'), out);
    const blocks = out.trim().split('\n\n').map((b) => JSON.parse(b.slice(6)) as { choices?: [{ delta: Record<string, unknown> }]; text?: string });
    const deltas = blocks.flatMap((b) => (b.choices ? [b.choices[0].delta] : []));
    // The parts' text streams per kind (chat-delta-parts.ts): what is held goes out as more parts.
    const parts = deltas.flatMap((d) => (Array.isArray(d['content']) ? (d['content'] as Array<{ type: string; text?: string; thinking?: Array<{ text: string }> }>) : []));
    assert.equal(parts.filter((p) => p.type === 'thinking').map((p) => p.thinking!.map((t) => t.text).join('')).join(''), 'ask [EMAIL]');
    // Without [DONE] or a finish event, the held `now` goes out in the stream's last event.
    assert.equal(parts.filter((p) => p.type === 'text').map((p) => p.text).join('') + (blocks.at(-1)!.text ?? ''), 'mail [EMAIL] now');
    assert.deepEqual(deltas[1], { reasoning: { text: '[EMAIL]' }, content: null });
  });
});

describe('SseMasker, chat deltas that switch between a list of parts and a string', () => {
  const run = (deltas: object[]) => {
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const chunk = (delta: object, finish: string | null = null) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const out = masker.push(Buffer.from(deltas.map((d) => chunk(d)).join('') + chunk({}, 'stop'))) + masker.end();
    let text = '';
    let thinking = '';
    for (const b of out.trim().split('\n\n')) {
      const content = (JSON.parse(b.slice(6)) as { choices: [{ delta: { content?: unknown } }] }).choices[0].delta.content;
      if (typeof content === 'string') text += content;
      else if (Array.isArray(content)) for (const p of content as Array<{ type: string; text?: string; thinking?: Array<{ text: string }> }>) {
        if (p.type === 'text') text += p.text;
        else thinking += p.thinking!.map((t) => t.text).join('');
      }
    }
    return { text, thinking };
  };
  const thinkingPart = (t: string) => ({ type: 'thinking', thinking: [{ type: 'text', text: t }] });

  test('security: an address split between text parts and a string delta is masked whole, either way', () => {
    assert.deepEqual(run([{ content: [{ type: 'text', text: 'Mail jane.r' }] }, { content: 'oe@example.com now.' }]), { text: 'Mail [EMAIL] now.', thinking: '' });
    assert.deepEqual(run([{ content: 'Mail jane.r' }, { content: [{ type: 'text', text: 'oe@example.com now.' }] }]), { text: 'Mail [EMAIL] now.', thinking: '' });
  });

  test('thinking held when a string delta comes goes out first, as a thinking part', () => {
    assert.deepEqual(run([{ content: [thinkingPart('Think of jane.roe@example.com')] }, { content: 'Done.' }]), { text: 'Done.', thinking: 'Think of [EMAIL]' });
  });
});

describe('SseMasker, a chat stream that ends without a finish event', () => {
  test('text still held at [DONE] goes out in a chat chunk before it (after [DONE] no client reads it)', () => {
    // Seen with an upstream that sends `finish_reason: null` on every chunk: the phone number
    // at the end was released after `data: [DONE]`, where the openai client had stopped.
    const masker = new SseMasker({ plan: planOf(profile({})), counts: {} });
    const chunk = (content: string) => `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 7, model: 'm', choices: [{ index: 0, delta: { content }, finish_reason: null }] })}\n\n`;
    let out = masker.push(Buffer.from(chunk('call me at ') + chunk('212-555-0147')));
    out += masker.push(Buffer.from('data: [DONE]\n\n'));
    out += masker.end();
    const blocks = out.trim().split('\n\n');
    assert.equal(blocks.at(-1), 'data: [DONE]');
    const events = blocks.slice(0, -1).map((b) => JSON.parse(b.replace(/^data: /, '')) as { object: string; id: string; choices: Array<{ index: number; delta: { content?: string }; finish_reason: null }> });
    assert.ok(events.every((e) => e.object === 'chat.completion.chunk' && e.id === 'c1'), 'every event before [DONE] is a chat chunk the openai client reads');
    assert.equal(events.map((e) => e.choices[0]!.delta.content ?? '').join(''), 'call me at [PHONE]');
    assert.equal(events.at(-1)!.choices[0]!.finish_reason, null, 'no finish reason is invented');
  });
});

describe('profiles with fields, combined with others', () => {
  const answer = JSON.stringify({ choices: [{ message: { content: 'mail a.b@example.com, ssn 536-22-8841' } }], contact: { email: 'c@example.com' } });

  test("a profile's fields restrict that profile only: a drop on contact.* does not drop the answer's content", () => {
    // Seen with obligations [analyst-hash, drop-contact]: the merged plan had no field
    // restriction, so drop-contact's drop applied to message.content and removed it.
    const hash = profile({ name: 'hash', entities: ['EMAIL'], operator: 'hash', hashKey: 'k' });
    const dropContact = profile({ name: 'drop-contact', operator: 'drop', fields: ['contact.*'] });
    const masked = JSON.parse(maskJsonText(answer, planOf(hash, dropContact), {})) as { choices: Array<{ message: { content?: string } }>; contact: Record<string, string> };
    assert.match(masked.choices[0]!.message.content ?? '(dropped)', /^mail \[EMAIL:[0-9a-f]{12}\], ssn 536-22-8841$/, 'content: hashed email, the SSN left (only drop-contact, on contact.*, masks every type)');
    assert.deepEqual(masked.contact, {}, 'contact.email dropped');
  });

  test('two restricted profiles each mask their own fields', () => {
    const cards = profile({ name: 'content-ssn', entities: ['US_SSN'], operator: 'partial', fields: ['choices[].message.content'] });
    const contact = profile({ name: 'contact', operator: 'drop', fields: ['contact.*'] });
    assert.deepEqual(JSON.parse(maskJsonText(answer, planOf(cards, contact), {})), { choices: [{ message: { content: 'mail a.b@example.com, ssn ***-**-8841' } }], contact: {} });
  });
});

describe('JSON masked in place', () => {
  const pii = planOf(profile({}));

  test('only the strings with a finding are written again: numbers as written, whitespace, escapes and key order stay', () => {
    const body = '{ "id": 1234567890123456789, "n": 1.10, "e": 1E+2, "s": "caf\\u00e9", "mail": "to a.b@example.com",\n  "x": [true, false, null] }';
    assert.equal(maskJsonText(body, pii, {}), body.replace('to a.b@example.com', 'to [EMAIL]'));
    assert.equal(maskJsonText(body.replace('a.b@example.com', 'nobody'), pii, {}), body.replace('a.b@example.com', 'nobody'));
    // An escaped string with a finding is written again as JSON writes it.
    assert.equal(maskJsonText('["\\u0061@example.com \\"q\\""]', pii, {}), '["[EMAIL] \\"q\\""]');
  });

  test('drop removes a member (the object is written again) and nulls an array element; a dropped root is null', () => {
    const drop = planOf(profile({ operator: 'drop' }));
    assert.equal(maskJsonText('{"a": 1, "e": "a@example.com", "b": [2, "b@example.com"]}', drop, {}), '{"a": 1,"b": [2, null]}');
    assert.equal(maskJsonText('"a@example.com"', drop, {}), 'null');
  });

  test('text that is not JSON is masked as text; a failed pass counts nothing twice', () => {
    for (const bad of ['{"a": "x@example.com",}', '{"b": "x@example.com", "a": 01}', '[1.2.3, "x@example.com"]', "{'a': 'x@example.com'}", '["x@example.com" 1]', '{"b": "x@example.com", "a": nullx}', '"x@example.com\u0001"']) {
      const counts: Record<string, number> = {};
      const out = maskJsonText(bad, pii, counts);
      assert.ok(!out.includes('x@example.com'), `${bad} → ${out}`);
      assert.deepEqual(counts, { EMAIL: 1 }, bad);
    }
  });

  test('nesting too deep to scan in place is parsed instead, and still masked', () => {
    const deep = `${'['.repeat(2000)}"a@example.com"${']'.repeat(2000)}`;
    assert.equal(maskJsonText(deep, pii, {}), `${'['.repeat(2000)}"[EMAIL]"${']'.repeat(2000)}`);
  });

  test('random documents: the same values as masking the parsed document (fields, drop, several profiles)', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const strings = ['plain', 'a.b@example.com', 'call (415) 555-2671', 'ssn 536-22-8841 and c@example.org', 'é \u2028 "quoted"', ''];
    const keys = ['user', 'email', 'content', 'contact', 'items', 'note'];
    const value = (depth: number): unknown => {
      const r = random();
      if (depth > 3 || r < 0.35) return pick<unknown>([pick(strings), Math.floor(random() * 1000) / 10, true, null]);
      if (r < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(random() * 4) }, () => [pick(keys), value(depth + 1)]));
    };
    const plans = [
      pii,
      planOf(profile({ operator: 'drop', entities: ['EMAIL'] })),
      planOf(profile({ name: 'a', fields: ['user.*', 'items[].note'] }), profile({ name: 'b', operator: 'partial', entities: ['US_SSN'], fields: ['**.content'] })),
      planOf(profile({ name: 'a', operator: 'hash', hashKey: 'k' }), profile({ name: 'b', operator: 'drop', entities: ['PHONE'], fields: ['contact'] })),
    ];
    for (let i = 0; i < 400; i++) {
      const doc = value(0);
      const text = JSON.stringify(doc, null, random() < 0.5 ? 2 : undefined);
      const plan = plans[i % plans.length]!;
      const inPlace: Record<string, number> = {};
      const parsed: Record<string, number> = {};
      assert.deepEqual(JSON.parse(maskJsonText(text, plan, inPlace)), maskJsonValue(doc, plan, parsed), text);
      assert.deepEqual(inPlace, parsed, text);
    }
  });
});
