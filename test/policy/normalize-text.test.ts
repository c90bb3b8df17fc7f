import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizeForKeywords } from '../../src/policy/normalize-text.js';

describe('normalizeForKeywords', () => {
  const rows: ReadonlyArray<readonly [string, string, string]> = [
    ['plain', 'drop table', 'droptable'],
    ['case', 'DROP Table', 'droptable'],
    ['spacing between letters', 'd r o p  t-a-b-l-e', 'droptable'],
    ['punctuation and newlines', 'drop.\n_table!', 'droptable'],
    ['zero-width space, joiner, non-joiner, BOM, word joiner', 'dr\u200bo\u200dp\u200c ta\ufeffb\u2060le', 'droptable'],
    ['soft hyphen and bidi controls', 'dr\u00adop \u202etable\u202c', 'droptable'],
    ['fullwidth compatibility forms', 'ｄｒｏｐ　ＴＡＢＬＥ', 'droptable'],
    ['combining accents', 'dróp tâblé', 'droptable'],
    ['Cyrillic look-alikes', 'dгор tаblе', 'droptable'],
    ['Greek look-alikes', 'drορ tαble', 'droptable'],
    ['mathematical alphanumerics', '𝐝𝐫𝐨𝐩 𝘵𝘢𝘣𝘭𝘦', 'droptable'],
    ['ligature', 'ﬁle', 'file'],
    ['digits are kept', 'Top 10', 'top10'],
    ['empty', '', ''],
  ];
  for (const [name, input, expected] of rows) {
    test(name, () => assert.equal(normalizeForKeywords(input), expected));
  }

  test('is linear on 1 MB of separators', () => {
    const started = performance.now();
    normalizeForKeywords(' \u200b-'.repeat(350_000));
    assert.ok(performance.now() - started < 5_000);
  });
});
