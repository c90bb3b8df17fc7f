// Bedrock's streams (application/vnd.amazon.eventstream: binary frames around JSON)
// behind an `http` connection with masking, through the real data plane and forwarder:
// passed as bytes, the model's text went out unmasked. A value split across two frames,
// and frames cut across TCP chunks, come out masked, in frames with valid CRCs.

import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { MaskProfile } from '../../../src/mask/index.js';
import { awsFrame, chunkFrame, readAwsFrames } from '../../helpers/aws-event-stream.js';
import { startMaskingHarness, type Harness } from '../../helpers/masking-harness.js';

const pii: MaskProfile = { name: 'pii', operator: 'redact', keepLast: 4, applyTo: 'response' };

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

async function stream(frames: readonly Buffer[], cutAt?: number): Promise<Buffer> {
  harness ??= await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
  const bytes = Buffer.concat(frames);
  harness.upstream((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
    const cut = cutAt ?? bytes.length;
    res.write(bytes.subarray(0, cut));
    setTimeout(() => res.end(bytes.subarray(cut)), 5);
  });
  const res = await fetch(`${harness.url}/model/anthropic.claude-x/invoke-with-response-stream`, { method: 'POST', body: '{}' });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

describe('Bedrock event streams', () => {
  test('InvokeModelWithResponseStream (Anthropic events in base64 chunks): a value split across frames is masked, cut anywhere', async () => {
    const frames = [
      chunkFrame({ type: 'message_start', message: { id: 'msg_1', role: 'assistant', content: [] } }),
      chunkFrame({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Mail jane.roe@exa' } }),
      chunkFrame({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'mple.com, SSN 123-45-6789.' } }),
      chunkFrame({ type: 'content_block_stop', index: 0 }),
      chunkFrame({ type: 'message_stop', 'amazon-bedrock-invocationMetrics': { outputTokenCount: 9 } }),
    ];
    const total = Buffer.concat(frames).length;
    for (const cut of [undefined, 7, frames[0]!.length + 20, total - 3]) {
      const out = await stream(frames, cut);
      const events = readAwsFrames(out).map((f) => {
        assert.equal(f.eventType, 'chunk');
        return JSON.parse(Buffer.from(f.payload['bytes'] as string, 'base64').toString()) as { type: string; delta?: { text?: string } };
      });
      const text = events.filter((e) => e.type === 'content_block_delta').map((e) => e.delta!.text).join('');
      assert.equal(text, 'Mail [EMAIL], SSN [US_SSN].', `cut at ${cut}`);
      assert.ok(!out.toString('latin1').includes('6789'));
      assert.deepEqual(events.map((e) => e.type).slice(-2), ['content_block_stop', 'message_stop']);
    }
  });

  test('ConverseStream: text split across contentBlockDelta frames and a tool input in pieces are masked', async () => {
    const out = await stream([
      awsFrame('messageStart', { role: 'assistant', p: 'ab' }),
      awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: 'Call (415) 555' }, p: 'ab' }),
      awsFrame('contentBlockDelta', { contentBlockIndex: 0, delta: { text: '-2671 now' }, p: 'ab' }),
      awsFrame('contentBlockStop', { contentBlockIndex: 0, p: 'ab' }),
      awsFrame('contentBlockStart', { contentBlockIndex: 1, start: { toolUse: { toolUseId: 't1', name: 'mail' } } }),
      awsFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: '{"to": "ann@ex' } } }),
      awsFrame('contentBlockDelta', { contentBlockIndex: 1, delta: { toolUse: { input: 'ample.com"}' } } }),
      awsFrame('contentBlockStop', { contentBlockIndex: 1 }),
      awsFrame('messageStop', { stopReason: 'tool_use' }),
    ]);
    const frames = readAwsFrames(out);
    assert.ok(!out.toString('latin1').includes('2671') && !out.toString('latin1').includes('ample.com'));
    const deltas = (i: number) => frames.filter((f) => f.eventType === 'contentBlockDelta' && f.payload['contentBlockIndex'] === i).map((f) => f.payload['delta']);
    assert.equal(deltas(0).map((d) => d.text ?? '').join(''), 'Call [PHONE] now');
    assert.deepEqual(JSON.parse(deltas(1).map((d) => d.toolUse?.input ?? '').join('')), { to: '[EMAIL]' });
    assert.deepEqual(frames.map((f) => f.eventType).slice(-2), ['contentBlockStop', 'messageStop']);
  });

  test('InvokeModelWithResponseStream of other models (Meta Llama `generation`, Amazon Titan `outputText`, Mistral `outputs[].text`): a value split across chunks is masked', async () => {
    const pieces = ['Mail jane.do', 'e@example.com or call +1 415 55', '5 2671 ok', ''];
    const shapes: Record<string, { event: (text: string, last: boolean) => object; text: (event: Record<string, any>) => string }> = {
      llama: { event: (t, last) => ({ generation: t, prompt_token_count: null, generation_token_count: 1, stop_reason: last ? 'stop' : null }), text: (e) => e['generation'] },
      titan: { event: (t, last) => ({ outputText: t, index: 0, totalOutputTextTokenCount: last ? 5 : null, completionReason: last ? 'FINISH' : null }), text: (e) => e['outputText'] },
      mistral: { event: (t, last) => ({ outputs: [{ text: t, stop_reason: last ? 'stop' : null }] }), text: (e) => e['outputs'][0].text },
    };
    for (const [model, shape] of Object.entries(shapes)) {
      const out = await stream(pieces.map((t, i) => chunkFrame(shape.event(t, i === pieces.length - 1))));
      const events = readAwsFrames(out).map((f) => JSON.parse(Buffer.from(f.payload['bytes'] as string, 'base64').toString()) as Record<string, any>);
      assert.equal(events.map(shape.text).join(''), 'Mail [EMAIL] or call [PHONE] ok', model);
      assert.ok(!events.some((e) => /jane|2671|415 55/.test(JSON.stringify(e))), `${model}: ${JSON.stringify(events)}`);
    }
  });

  test('a frame whose CRC does not match fails closed: the client gets no raw text', async () => {
    const bad = chunkFrame({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'ssn 123-45-6789' } });
    bad.writeUInt32BE(0, bad.length - 4);
    harness ??= await startMaskingHarness({ profiles: [pii], connectionMasking: ['pii'], connectionType: 'http' });
    harness.upstream((_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream' });
      res.end(bad);
    });
    // The answer is cut (a failed read) or refused: either way without the frame.
    const body = await fetch(`${harness.url}/model/m/invoke-with-response-stream`, { method: 'POST', body: '{}' })
      .then((res) => res.arrayBuffer())
      .then((b) => Buffer.from(b).toString('latin1'), () => '');
    assert.ok(!body.includes('123-45-6789') && !body.includes(Buffer.from('123-45-6789').toString('base64').slice(0, 8)));
    assert.equal(harness.outcomes[0]!.errorCode, 'masking_failed');
  });
});
