// The streaming guarantee: every labelled value of the corpus, split across two SSE
// events at every offset, comes out masked — and the streamed result is exactly what
// masking the whole text at once gives. Also: raw upstream bytes cut at every byte
// offset (TCP chunking) change nothing.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyFindings, MaskPlanner, SseMasker, type EntityCounts, type MaskPlan } from '../../src/mask/index.js';
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
});
