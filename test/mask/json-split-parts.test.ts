// Non-streamed answers whose text is split across parts that clients join (Anthropic's
// content blocks, the Responses API's output_text parts, chat content parts, Gemini's
// parts, Cohere's content items, Bedrock Converse's blocks): every labelled value of the corpus, split across two
// parts at every offset, comes out masked, and the joined text is what masking the whole
// text at once gives. Both JSON maskers are checked: in the answer's own text
// (maskJsonText) and over a parsed value (maskJsonValue, for events and deep documents).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MaskPlanner } from '../../src/mask/index.js';
import { maskJsonText, maskJsonValue } from '../../src/mask/json-masker.js';
import { corpusSplits } from '../helpers/masking-corpus.js';

const plan = new MaskPlanner([{ name: 'all', operator: 'redact', keepLast: 4, applyTo: 'response' }]).plan(['all'], 'response')!;

type Json = Record<string, any>;

interface Shape {
  /** The answer with its text in parts `texts`. */
  readonly build: (texts: readonly string[]) => Json;
  /** The text a client shows: the parts joined. */
  readonly read: (answer: Json) => string;
}

const shapes: Record<string, Shape> = {
  'Anthropic Messages content text blocks': {
    build: (texts) => ({ id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-x', content: texts.map((text) => ({ type: 'text', text, citations: null })), stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 2 } }),
    read: (a) => a['content'].map((b: Json) => b['text']).join(''),
  },
  'OpenAI Responses output_text parts of one message': {
    build: (texts) => ({ id: 'resp_1', object: 'response', status: 'completed', output: [{ id: 'msg_1', type: 'message', role: 'assistant', content: texts.map((text) => ({ type: 'output_text', text, annotations: [] })) }] }),
    read: (a) => a['output'].flatMap((i: Json) => i['content']).map((p: Json) => p['text']).join(''),
  },
  'OpenAI Responses output_text parts of two message items, a reasoning item between (the SDK joins them)': {
    build: (texts) => ({ id: 'resp_1', object: 'response', output: texts.flatMap((text, i) => [...(i > 0 ? [{ id: 'rs_1', type: 'reasoning', summary: [] }] : []), { id: `msg_${i}`, type: 'message', role: 'assistant', content: [{ type: 'output_text', text, annotations: [] }] }]) }),
    read: (a) => a['output'].filter((i: Json) => i['type'] === 'message').flatMap((i: Json) => i['content']).map((p: Json) => p['text']).join(''),
  },
  'OpenAI chat completion, message content as a list of parts': {
    build: (texts) => ({ id: 'c1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: texts.map((text) => ({ type: 'text', text })) }, finish_reason: 'stop' }] }),
    read: (a) => a['choices'][0].message.content.map((p: Json) => p['text']).join(''),
  },
  'Google Gemini candidate parts': {
    build: (texts) => ({ candidates: [{ index: 0, content: { role: 'model', parts: texts.map((text) => ({ text })) }, finishReason: 'STOP' }] }),
    read: (a) => a['candidates'][0].content.parts.map((p: Json) => p['text']).join(''),
  },
  'Cohere v2 chat message content items': {
    build: (texts) => ({ id: 'c1', message: { role: 'assistant', content: texts.map((text) => ({ type: 'text', text })), citations: [] }, finish_reason: 'COMPLETE', usage: { tokens: { output_tokens: 2 } } }),
    read: (a) => a['message'].content.map((p: Json) => p['text']).join(''),
  },
  'Bedrock Converse content blocks': {
    build: (texts) => ({ output: { message: { role: 'assistant', content: texts.map((text) => ({ text })) } }, stopReason: 'end_turn' }),
    read: (a) => a['output'].message.content.map((p: Json) => p['text']).join(''),
  },
};

describe('JSON answers: a value split across two text parts at any offset is masked whole', () => {
  for (const [name, shape] of Object.entries(shapes)) {
    test(name, () => {
      let runs = 0;
      for (const s of corpusSplits(plan)) {
        const answer = shape.build([s.text.slice(0, s.cut), s.text.slice(s.cut)]);
        const inText = maskJsonText(JSON.stringify(answer), plan, {});
        assert.ok(!inText.includes(s.value), `line ${s.line}: ${s.type} leaked when cut at ${s.cut}`);
        assert.equal(shape.read(JSON.parse(inText) as Json), s.expected, `line ${s.line}: cut at ${s.cut}`);
        assert.equal(shape.read(maskJsonValue(answer, plan, {}) as Json), s.expected, `line ${s.line}: cut at ${s.cut} (parsed value)`);
        runs++;
      }
      assert.ok(runs > 1500);
    });
  }
});

describe('JSON answers: the parts of a joined text', () => {
  const anthropic = shapes['Anthropic Messages content text blocks']!;

  test('each part keeps its own text; a value across parts goes, masked, to the part where it ends, across three parts too; counted once', () => {
    const counts = {};
    const out = JSON.parse(maskJsonText(JSON.stringify(anthropic.build(['Mail jane.r', 'oe@exa', 'mple.com or call +1 415', ' 555 2671 now.'])), plan, counts)) as Json;
    assert.deepEqual(out['content'].map((b: Json) => b['text']), ['Mail ', '', '[EMAIL] or call ', '[PHONE] now.']);
    assert.deepEqual(counts, { EMAIL: 1, PHONE: 1 });
  });

  test('only adjacent parts of one kind are joined: a tool_use block between two text blocks ends the text', () => {
    const answer = { content: [{ type: 'text', text: 'Mail jane.r' }, { type: 'tool_use', id: 't1', name: 'f', input: { q: 'x' } }, { type: 'text', text: 'oe@example.com' }] };
    const out = JSON.parse(maskJsonText(JSON.stringify(answer), plan, {})) as Json;
    assert.deepEqual(out['content'].map((b: Json) => b['text'] ?? b['name']), ['Mail jane.r', 'f', '[EMAIL]']);
  });

  test('the answer keeps its own text elsewhere: numbers as written, other members untouched', () => {
    const text = '{"id": "msg_1", "content": [{"type": "text", "text": "Mail jane.r"}, {"type": "text", "text": "oe@example.com"}], "usage": {"output_tokens": 12345678901234567890}}';
    assert.equal(maskJsonText(text, plan, {}), '{"id": "msg_1", "content": [{"type": "text", "text": "Mail "}, {"type": "text", "text": "[EMAIL]"}], "usage": {"output_tokens": 12345678901234567890}}');
  });

  test('fail closed: a document whose text shows parts its parsed value does not (duplicate member names) is refused, not masked as text', () => {
    const text = '{"output":[{"type":"message","content":[{"type":"output_text","text":"jane.r"}],"content":[{"type":"output_text","text":"x"},{"type":"output_text","text":"oe@example.com"}]}]}';
    assert.throws(() => maskJsonText(text, plan, {}), (error: Error & { code?: string }) => error.code === 'masking_failed');
  });

  test('a profile whose fields do not cover the parts leaves them as they are', () => {
    const scoped = new MaskPlanner([{ name: 'ids', operator: 'redact', keepLast: 4, applyTo: 'response', fields: ['user.*'] }]).plan(['ids'], 'response')!;
    const answer = anthropic.build(['Mail jane.r', 'oe@example.com']);
    assert.deepEqual(JSON.parse(maskJsonText(JSON.stringify(answer), scoped, {})), answer);
  });
});
