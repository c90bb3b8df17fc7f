// Multipart uploads with the official openai client (`files.create`,
// `audio.transcriptions.create`) through an `openai` connection: request scrubbing
// masks the text parts and passes the binary ones byte for byte, the body limit
// refuses with 413, and the record keeps no binary body.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import OpenAI, { toFile } from 'openai';
import { startSdkGateway, type SdkGateway } from '../helpers/sdk-gateway.js';

/** Bytes that are not UTF-8 (as audio is), with a run of digits that looks like a phone number. */
function audioBytes(size: number): Buffer {
  const audio = Buffer.alloc(size);
  for (let i = 0; i < size; i++) audio[i] = (Math.imul(i, 2654435761) >>> 24) & 0xff;
  audio.write('RIFF', 0, 'latin1');
  return audio;
}

describe('openai SDK: multipart uploads through a connection that scrubs requests', () => {
  let h: SdkGateway;
  let client: OpenAI;

  before(async () => {
    h = await startSdkGateway({
      connectionYaml: '    masking: [scrub]\n    limits: { maxRequestBody: 1MiB }\n',
      extraYaml: 'masking:\n  profiles:\n    scrub: { applyTo: request, entities: [EMAIL] }\n',
    });
    client = await h.client(['ml']);
    h.upstream((req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/v1/audio/transcriptions') res.end(JSON.stringify({ text: 'Hello there.', usage: { type: 'duration', seconds: 3 } }));
      else res.end(JSON.stringify({ id: 'file-abc123', object: 'file', bytes: body.length, created_at: 1, filename: 'train.jsonl', purpose: 'fine-tune', status: 'processed', expires_at: null }));
    });
  });
  after(() => h?.close());

  test('an audio file reaches the target byte for byte while the prompt beside it is scrubbed', async () => {
    const audio = audioBytes(300_000);
    const { data, response } = await client.audio.transcriptions
      .create({ model: 'whisper-1', file: await toFile(audio, 'call.wav', { type: 'audio/wav' }), prompt: 'Names: jane.roe@example.com' })
      .withResponse();
    assert.equal(data.text, 'Hello there.');
    const sent = h.received.at(-1)!;
    assert.ok(sent.body.includes(audio), 'the audio arrived intact');
    assert.equal(Number(sent.headers['content-length']), sent.body.length);
    const text = sent.body.toString('latin1');
    assert.ok(text.includes('Names: [EMAIL]'), 'the prompt was scrubbed');
    assert.ok(!text.includes('jane.roe@example.com'));

    const record = await h.session(response.headers.get('gatehouse-exchange-id')!);
    assert.equal(record['operation'], 'http.POST /audio/transcriptions');
    assert.equal(record['request'].body ?? undefined, undefined, 'a multipart upload is recorded by size, not its bytes');
    assert.deepEqual(record['maskCounts'], { EMAIL: 1 });
  });

  test('a text file upload (JSONL) is scrubbed like any text', async () => {
    const jsonl = '{"messages":[{"role":"user","content":"write to a.b@example.org"}]}\n';
    const file = await client.files.create({ file: await toFile(Buffer.from(jsonl), 'train.jsonl'), purpose: 'fine-tune' });
    assert.equal(file.id, 'file-abc123');
    const sent = h.received.at(-1)!.body.toString('utf8');
    assert.ok(sent.includes('"content":"write to [EMAIL]"'), sent);
  });

  test('a multipart body whose parts cannot be read is not forwarded', async () => {
    const before = h.received.length;
    const res = await fetch(`${h.baseURL}/files`, {
      method: 'POST',
      headers: { authorization: `Bearer ${client.apiKey}`, 'content-type': 'multipart/form-data; boundary=xyz' },
      body: '--xyz\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nmail jane.roe@example.com',
    });
    assert.equal(res.status, 502);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'masking_failed');
    assert.equal(h.received.length, before);
  });

  test('a form field that is not UTF-8 is scrubbed as Latin-1 text (as form parsers read it), not passed on as binary', async () => {
    const audio = audioBytes(1000);
    const body = Buffer.concat([
      Buffer.from('--xyz\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'),
      Buffer.from('--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
      audio,
      Buffer.from('\r\n--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'),
      Buffer.from('Caf\u00e9 names: jane.roe@example.com', 'latin1'),
      Buffer.from('\r\n--xyz--\r\n'),
    ]);
    const res = await fetch(`${h.baseURL}/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${client.apiKey}`, 'content-type': 'multipart/form-data; boundary=xyz' }, body });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    const sent = h.received.at(-1)!.body;
    assert.ok(sent.includes(audio), 'the audio arrived intact');
    assert.ok(sent.includes(Buffer.from('Caf\u00e9 names: [EMAIL]', 'latin1')), sent.toString('latin1'));
    assert.ok(!sent.toString('latin1').includes('jane.roe@example.com'));
  });

  test('an upload over the connection limit is refused with 413 before it reaches the target', async () => {
    const before = h.received.length;
    await assert.rejects(
      client.files.create({ file: await toFile(audioBytes(1_200_000), 'big.bin'), purpose: 'batch' }),
      (error: unknown) => error instanceof OpenAI.APIError && error.status === 413 && error.code === 'request_too_large' && error.type === 'invalid_request_error',
    );
    assert.equal(h.received.length, before);
  });
});

describe('openai SDK: guardrails read the text parts of a multipart request', () => {
  let h: SdkGateway;
  let client: OpenAI;
  const key = 'AKIAIOSFODNN7EXAMPLE';

  before(async () => {
    h = await startSdkGateway({ extraYaml: 'policy:\n  packs: [secrets-in-prompts]\n' });
    client = await h.client(['ml']);
    h.upstream((req, body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/v1/audio/transcriptions') res.end(JSON.stringify({ text: 'Hello there.' }));
      else res.end(JSON.stringify({ id: 'file-abc123', object: 'file', bytes: body.length, created_at: 1, filename: 'train.jsonl', purpose: 'fine-tune', status: 'processed', expires_at: null }));
    });
  });
  after(() => h?.close());

  const refusedBy = (rule: string) => (error: unknown) => error instanceof OpenAI.APIError && error.status === 403 && (error.error as { rule?: string } | undefined)?.rule === rule;

  test('a credential in the transcription prompt is refused before it reaches the target, and not recorded', async () => {
    const before = h.received.length;
    let id: string | undefined;
    await assert.rejects(
      client.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(audioBytes(20_000), 'call.wav', { type: 'audio/wav' }), prompt: `Keys: ${key}` }).catch((error: unknown) => {
        id = (error as InstanceType<typeof OpenAI.APIError>).headers?.get('gatehouse-exchange-id') ?? undefined;
        throw error;
      }),
      refusedBy('secrets-in-prompts:aws-access-key'),
    );
    assert.equal(h.received.length, before, 'nothing was forwarded');
    const record = await h.session(id!);
    assert.deepEqual(record['decision']?.rules ?? record['rules'], ['secrets-in-prompts:aws-access-key'], JSON.stringify(record));
    assert.equal(record['request'].promptText, 'Keys: [AWS_ACCESS_KEY]', 'the prompt is recorded, its credential redacted');
    assert.ok(!JSON.stringify(record).includes(key), 'the refused credential is not in the record');
  });

  test('a credential in an uploaded text file is refused', async () => {
    const before = h.received.length;
    const jsonl = `{"messages":[{"role":"user","content":"aws_access_key_id = ${key}"}]}\n`;
    await assert.rejects(client.files.create({ file: await toFile(Buffer.from(jsonl), 'train.jsonl'), purpose: 'fine-tune' }), refusedBy('secrets-in-prompts:aws-access-key'));
    assert.equal(h.received.length, before);
  });

  test('binary parts are not read as text: audio whose bytes spell a key is forwarded, with a clean prompt', async () => {
    const audio = audioBytes(50_000);
    audio.write(key, 1000, 'latin1');
    const result = await client.audio.transcriptions.create({ model: 'whisper-1', file: await toFile(audio, 'call.wav', { type: 'audio/wav' }), prompt: 'Names: Jane' });
    assert.equal(result.text, 'Hello there.');
    assert.ok(h.received.at(-1)!.body.includes(audio));
  });

  test('a multipart body whose parts cannot be read is refused when a rule reads its text', async () => {
    const before = h.received.length;
    for (const [contentType, body] of [
      ['multipart/form-data; boundary=xyz', `--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n${key}`],
      ['multipart/form-data', `--xyz\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n${key}\r\n--xyz--\r\n`],
    ] as const) {
      const res = await fetch(`${h.baseURL}/audio/transcriptions`, { method: 'POST', headers: { authorization: `Bearer ${client.apiKey}`, 'content-type': contentType }, body });
      assert.equal(res.status, 400, contentType);
      const error = ((await res.json()) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, 'invalid_request_body');
      assert.equal(error.message, 'The request body could not be read, so its text could not be checked.');
    }
    assert.equal(h.received.length, before);
  });
});
