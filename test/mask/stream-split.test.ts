// The streaming guarantee: every labelled value of the corpus, split across two SSE
// events at every offset, comes out masked — and the streamed result is exactly what
// masking the whole text at once gives. Also: raw upstream bytes cut at every byte
// offset (TCP chunking) change nothing; and random texts (corpus pieces, prose and
// characters that matter to some scanner) cut into random pieces, under profiles with
// custom entities, deny and allow lists and restricted entity sets, stream to exactly
// the whole-text result.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyFindings, MaskPlanner, SseMasker, StreamTextMasker, type EntityCounts, type MaskPlan } from '../../src/mask/index.js';
import { loadCorpus } from '../helpers/masking-corpus.js';

const planner = new MaskPlanner([{ name: 'all', operator: 'redact', keepLast: 4, applyTo: 'response' }]);
const plan = planner.plan(['all'], 'response')!;

function chunk(content: string | undefined, finish: string | null = null): string {
  const delta = content === undefined ? {} : { content };
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
}

/** Runs SSE text through a masker, in the given byte pieces; returns the reassembled content. */
function run(pieces: readonly Buffer[], p: MaskPlan = plan): { content: string; raw: string } {
  const masker = new SseMasker({ plan: p, counts: {} });
  let raw = '';
  for (const piece of pieces) raw += masker.push(piece);
  raw += masker.end();
  let content = '';
  for (const block of raw.split('\n\n')) {
    const data = block.split('\n').find((l) => l.startsWith('data: '))?.slice(6);
    if (!data || data === '[DONE]') continue;
    const json = JSON.parse(data) as { choices: { delta?: { content?: string } }[] };
    content += json.choices[0]?.delta?.content ?? '';
  }
  return { content, raw };
}

function wholeMasked(text: string): string {
  const counts: EntityCounts = {};
  return applyFindings(text, plan.find(text), counts);
}

describe('streaming masking: a value split across two events at any offset', () => {
  const samples = loadCorpus().filter((s) => s.labels.length > 0);

  test('the corpus has several hundred labelled values to split', () => {
    assert.ok(samples.reduce((n, s) => n + s.labels.length, 0) >= 400);
  });

  test('every labelled value, split at every offset, is masked and matches whole-text masking', () => {
    let runs = 0;
    for (const sample of samples) {
      const expected = wholeMasked(sample.text);
      for (const label of sample.labels) {
        for (let cut = label.start + 1; cut < label.end; cut++) {
          const sse = chunk('', null).replace('"content":""', '"role":"assistant","content":""') + chunk(sample.text.slice(0, cut)) + chunk(sample.text.slice(cut)) + chunk(undefined, 'stop') + 'data: [DONE]\n\n';
          const { content, raw } = run([Buffer.from(sse)]);
          runs++;
          assert.ok(!raw.includes(label.value), `line ${sample.line}: ${label.type} leaked when cut at ${cut - label.start}`);
          assert.equal(content, expected, `line ${sample.line}: cut at ${cut - label.start}`);
        }
      }
    }
    assert.ok(runs > 5000);
  });

  test('a value spread over one event per character is masked', () => {
    for (const sample of samples.slice(0, 60)) {
      let sse = '';
      for (const ch of sample.text) sse += chunk(ch);
      sse += chunk(undefined, 'stop');
      const { content, raw } = run([Buffer.from(sse)]);
      for (const label of sample.labels) assert.ok(!raw.includes(label.value), `line ${sample.line}: ${label.type} leaked`);
      assert.equal(content, wholeMasked(sample.text));
    }
  });

  test('a phone glued to Chinese or Japanese text, or with its area code in parentheses after the country code, split at every offset', () => {
    // `call +1(` was released as it stood (a `(` after digits started nothing), so the
    // number that followed was masked without its `+1(`: `call +1([PHONE] now`.
    for (const text of ['call +1(415)555-2671 now', 'x +44(0)20 7946 0958 y', '请致电+86 138 0013 8000，谢谢', '電話番号は+81 3-1234-5678です']) {
      const expected = wholeMasked(text);
      assert.equal(expected.match(/\[PHONE\]/g)?.length, 1, text);
      for (let cut = 1; cut < text.length; cut++) {
        const { content } = run([Buffer.from(chunk(text.slice(0, cut)) + chunk(text.slice(cut)) + chunk(undefined, 'stop'))]);
        assert.equal(content, expected, `${text} cut at ${cut}`);
      }
    }
  });

  test('the raw SSE bytes cut at every byte offset give the same answer', () => {
    const text = 'Reach me at maría.lópez@example.com or +1 415 555 2671, card 4111-1111-1111-1111 — ok';
    const sse = Buffer.from(chunk('Reach me at mar') + chunk('ía.lópez@exa') + chunk('mple.com or +1 415 5') + chunk('55 2671, card 4111-1111-11') + chunk('11-1111 — ok') + chunk(undefined, 'stop'));
    const expected = wholeMasked(text);
    assert.equal(expected, 'Reach me at [EMAIL] or [PHONE], card [CREDIT_CARD] — ok');
    for (let cut = 1; cut < sse.length; cut++) {
      const { content } = run([sse.subarray(0, cut), sse.subarray(cut)]);
      assert.equal(content, expected, `cut at byte ${cut}`);
    }
  });

  test('security: a lower-case or mixed-case IBAN, compact or grouped, split at every offset, is masked and matches whole-text masking', () => {
    for (const text of ['pay to gb82 west 1234 5698 7654 32 today', 'pay to gb82west12345698765432.', 'konto De89 3704 0044 0532 0130 00 bitte']) {
      const expected = wholeMasked(text);
      assert.ok(expected.includes('[IBAN]'), expected);
      for (let cut = 1; cut < text.length; cut++) {
        const sse = chunk(text.slice(0, cut)) + chunk(text.slice(cut)) + chunk(undefined, 'stop') + 'data: [DONE]\n\n';
        assert.equal(run([Buffer.from(sse)]).content, expected, `${text} cut at ${cut}`);
      }
    }
  });
});

describe('streaming masking: random texts in random pieces', () => {
  const corpus = loadCorpus();
  const profiles = new MaskPlanner([
    { name: 'all', operator: 'redact', keepLast: 4, applyTo: 'response' },
    { name: 'custom', operator: 'hash', hashKey: 'k', keepLast: 4, applyTo: 'response', customEntities: [{ name: 'EMPLOYEE_ID', pattern: 'EMP-[0-9]{6}', context: ['employee'] }], denyLists: [{ name: 'PROJECT', terms: ['Bluebird', 'Zeta 9', 'Иванов', '北極星'] }], allowList: ['help@example.org'] },
    { name: 'cards', operator: 'partial', keepLast: 4, applyTo: 'response', entities: ['CREDIT_CARD', 'US_SSN'] },
  ]);
  const plans: Record<string, MaskPlan> = {
    all: profiles.plan(['all'], 'response')!,
    custom: profiles.plan(['custom'], 'response')!,
    cards: profiles.plan(['cards'], 'response')!,
    'all+cards': profiles.plan(['all', 'cards'], 'response')!,
  };
  // Seeded, so a failure reproduces.
  let seed = 20240611;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const words = ['the', 'key', 'secret:', 'token=', 'password', 'aws', 'I', 'API', 'DE', 'call', '+1', '(415)', '555-', '2671', '1.', '10:30', 'fe80::', '::1', '@', 'example', '.com', 'jane.doe', '-----BEGIN ', 'PRIVATE KEY-----', '-----END PRIVATE KEY-----', 'sk-', 'ghp_', 'eyJ', 'AKIA', '4111', 'é', '—', '\n', ' ', ' ', '.', ',', '-', '=', '/', '(', ')', 'Bluebird', 'Zeta', '9', 'employee', 'EMP-123456', 'help@example.org', 'Иванов', 'ы', '北極星', 'プ', 'postgres://', 'app:', 'pa$$', '@db', '%40', '(0)20', ')555', '电话', '+86 138 0013 8000', 'です', '+8613800138000', '+1(', '415)', '+44(0)20'];
  const significant = '0123456789 -.+()@:_=/~%\'ABCDEFKQaefxyzé—\n';

  function randomText(): string {
    let text = '';
    for (let p = 1 + rnd(6); p > 0; p--) {
      const kind = rnd(4);
      if (kind === 0) {
        const line = corpus[rnd(corpus.length)]!.text;
        const at = rnd(line.length);
        text += line.slice(at, at + 1 + rnd(120));
      } else if (kind === 1) text += corpus[rnd(corpus.length)]!.text;
      else if (kind === 2) for (let w = 1 + rnd(10); w > 0; w--) text += words[rnd(words.length)];
      else {
        // A long run of digit groups (a table of numbers) with a phone, card or SSN in it.
        const groups = Array.from({ length: 8 + rnd(30) }, () => String(rnd(10_000)).slice(0, 1 + rnd(4)));
        groups.splice(rnd(groups.length), 0, ['415 555 2671', '4111 1111 1111 1111', '123 45 6789'][rnd(3)]!);
        text += ` ${groups.join(rnd(4) === 0 ? '-' : ' ')} `;
      }
    }
    for (let m = rnd(4); m > 0 && text.length > 0; m--) {
      const at = rnd(text.length);
      const ch = significant[rnd(significant.length)]!;
      text = rnd(2) ? text.slice(0, at) + ch + text.slice(at) : text.slice(0, at) + ch + text.slice(at + 1);
    }
    return text;
  }

  test('every random text, cut into pieces of 1 to 12 characters, streams to the whole-text result', () => {
    let runs = 0;
    for (let i = 0; i < 250; i++) {
      const text = randomText();
      for (const [name, p] of Object.entries(plans)) {
        const expected = applyFindings(text, p.find(text), {});
        for (const maxPiece of [1, 4, 12]) {
          const masker = new StreamTextMasker(p, {});
          let out = '';
          for (let at = 0; at < text.length; ) {
            const length = 1 + rnd(maxPiece);
            out += masker.push(text.slice(at, at + length));
            at += length;
          }
          out += masker.end();
          runs++;
          assert.equal(out, expected, `plan ${name}, pieces up to ${maxPiece}: ${JSON.stringify(text)}`);
        }
      }
    }
    assert.equal(runs, 250 * 4 * 3);
  });

  test('a value inside a long run of digit groups streams as in the whole text', () => {
    // The number scanner cuts runs into 12-group pieces from the run's start; the
    // masker keeps the run's start in view, so the pieces line up with the whole text.
    let leaks = 0;
    for (let before = 0; before < 40; before++) {
      for (let after = 0; after < 16; after += 3) {
        const group = (i: number) => String(10 + ((i * 7) % 90));
        const text = `x ${[...Array.from({ length: before }, (_, i) => group(i)), '415 555 2671', ...Array.from({ length: after }, (_, i) => group(i + 50))].join(' ')} end`;
        const expected = applyFindings(text, plan.find(text), {});
        for (const size of [1, 3, 7]) {
          const masker = new StreamTextMasker(plan, {});
          let out = '';
          for (let at = 0; at < text.length; at += size) out += masker.push(text.slice(at, at + size));
          out += masker.end();
          if (expected.includes('[PHONE]') && !out.includes('[PHONE]')) leaks++;
          assert.equal(out, expected, `${before} groups before, ${after} after, pieces of ${size}`);
        }
      }
    }
    assert.equal(leaks, 0);
  });

  test('a password with symbols, split at any offset, is masked whole', () => {
    const short = ['jdbc:mysql://db:3306/app?user=root&password=hunter22&ssl=true', 'password: changeme1 then', 'DATABASE_URL="postgres://app:pa$$w0rd!@db:5432/app" ok', 'redis://:hunter2@cache:6379 and http://example.com:8080/a', 'db_password = "Vq8#mT2z!pL9@xR4"; ok', '{"password": "Xk9#vB2$mQ7!zR4"}', 'The password is S3cure!Passw0rd#2024. Next', 'pwd=Ab1#cd2!ef3$ then'];
    for (const text of ['db password: Vq8#mT2zRk9LpW4xN7cB6yHd ok', 'secret=Ab1#S3cr3tPassw0rd2024xYzQ!x9, next', 'token Zq$1x&mT2zRk9LpW4xN7cB6yHd!', ...short]) {
      const expected = applyFindings(text, plan.find(text), {});
      assert.ok(!/Vq8|Ab1|Zq\$1|x9|mT2z|Xk9|zR4|S3cure|Passw0rd|cd2|pa\$|hunter2|changeme1/.test(expected), expected);
      for (let cut = 1; cut < text.length; cut++) {
        const masker = new StreamTextMasker(plan, {});
        assert.equal(masker.push(text.slice(0, cut)) + masker.push(text.slice(cut)) + masker.end(), expected, `cut at ${cut}`);
      }
      const masker = new StreamTextMasker(plan, {});
      let out = '';
      for (const ch of text) out += masker.push(ch);
      assert.equal(out + masker.end(), expected, 'one character per piece');
    }
  });

  test('a phone whose parenthesised group has no space after it, and a long percent-encoded address, split at any offset, are masked whole', () => {
    for (const text of ['call (415)555-2671 now', 'Tel: +44 (0)20 7946 0958, Fax +49 (0)30 901820.', `GET /u?email=${'j'.repeat(60)}.doe%40mail.${'x'.repeat(40)}.example.com HTTP/1.1`, '请联系jane@example.com获取帮助，或 用户@例子.中国。']) {
      const expected = applyFindings(text, plan.find(text), {});
      assert.ok(!/555-2671|7946|901820|%40/.test(expected), expected);
      for (let cut = 1; cut < text.length; cut++) {
        const masker = new StreamTextMasker(plan, {});
        assert.equal(masker.push(text.slice(0, cut)) + masker.push(text.slice(cut)) + masker.end(), expected, `cut at ${cut}`);
      }
    }
  });

  test('a finding that loses an overlap to one still growing is held with it', () => {
    // Whole text: the token after `@` stops being a secret once a letter is glued to
    // it, and then the address wins; its local part must not be out already.
    const text = 'the secret is x@example.com/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vWé ok';
    const expected = applyFindings(text, plan.find(text), {});
    assert.equal(expected, 'the secret is [EMAIL]/aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vWé ok');
    for (let cut = 1; cut < text.length; cut++) {
      const masker = new StreamTextMasker(plan, {});
      assert.equal(masker.push(text.slice(0, cut)) + masker.push(text.slice(cut)) + masker.end(), expected, `cut at ${cut}`);
    }
  });
});
