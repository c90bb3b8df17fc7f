import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatehouseError } from '../../../src/errors/index.js';
import { httpOperation, isRecord, openaiFacts, openaiOperation } from '../../../src/protocols/http/openai-request.js';

const body = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

describe('openaiOperation', () => {
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['POST', '/chat/completions', 'chat.completions'],
    ['POST', '/v1/chat/completions', 'chat.completions'],
    ['POST', '/openai/deployments/gpt4/chat/completions', 'chat.completions'],
    ['POST', '/completions', 'completions'],
    ['POST', '/v1/completions', 'completions'],
    ['POST', '/v1/embeddings', 'embeddings'],
    ['POST', '/embeddings', 'embeddings'],
    ['POST', '/v1/responses', 'responses'],
    ['POST', '/responses', 'responses'],
    ['GET', '/models', 'http.GET /models'],
    ['GET', '/v1/models', 'http.GET /v1/models'],
    ['GET', '/v1/models/gpt-4o', 'http.GET /v1/models/gpt-4o'],
    // Only POST creates: listing stored completions or fetching a response is plain HTTP.
    ['GET', '/v1/chat/completions', 'http.GET /v1/chat/completions'],
    ['GET', '/v1/responses/resp_1', 'http.GET /v1/responses/resp_1'],
    ['DELETE', '/v1/responses/resp_1', 'http.DELETE /v1/responses/resp_1'],
    ['POST', '/v1/files', 'http.POST /v1/files'],
    ['POST', '/v1/responses/resp_1/cancel', 'http.POST /v1/responses/resp_1/cancel'],
    // Many servers route a trailing slash alike: as plain HTTP its prompt would escape inspection.
    ['POST', '/v1/chat/completions/', 'chat.completions'],
    ['POST', '/v1/embeddings/', 'embeddings'],
    ['post', '/v1/chat/completions', 'http.post /v1/chat/completions'],
  ];
  for (const [method, path, operation] of cases) {
    test(`${method} ${path} → ${operation}`, () => {
      assert.equal(openaiOperation(method, path), operation);
    });
  }

  test('httpOperation', () => {
    assert.equal(httpOperation('PUT', '/a/b'), 'http.PUT /a/b');
  });
});

describe('openaiFacts: chat.completions', () => {
  test('model, stream and the text of string contents joined by newline', () => {
    const facts = openaiFacts('chat.completions', body({ model: 'gpt-4o', stream: true, messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hello 👋' }] }));
    assert.deepEqual(facts, { model: 'gpt-4o', stream: true, text: 'Be brief.\nHello 👋' });
  });

  test('array-of-parts content keeps text parts and skips images; tool calls and results are read too', () => {
    const facts = openaiFacts(
      'chat.completions',
      body({
        model: 'gpt-4o',
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'What is in' }, { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }, { type: 'text', text: 'this picture?' }] },
          { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', tool_call_id: 'c', content: 'tool says hi' },
        ],
      }),
    );
    assert.deepEqual(facts, { model: 'gpt-4o', stream: false, text: 'What is in\nthis picture?\n{}\ntool says hi' });
  });

  test('adjacent text parts are one text (a value split across them is read whole); an image between ends it; http JSON bodies alike', () => {
    const chat = openaiFacts('chat.completions', body({ model: 'm', messages: [{ role: 'user', content: [{ type: 'text', text: 'key AKIAIOSF' }, { type: 'text', text: 'ODNN7EXAMPLE' }, { type: 'image_url', image_url: { url: 'https://x/y.png' } }, { type: 'text', text: 'after' }] }] }));
    assert.equal(chat.text, 'key AKIAIOSFODNN7EXAMPLE\nafter');
    // Anthropic, Bedrock Converse and Gemini shapes behind an http connection.
    for (const request of [
      { model: 'c', messages: [{ role: 'user', content: [{ type: 'text', text: 'key AKIAIOSF' }, { type: 'text', text: 'ODNN7EXAMPLE' }] }] },
      { messages: [{ role: 'user', content: [{ text: 'key AKIAIOSF' }, { text: 'ODNN7EXAMPLE' }] }] },
      { contents: [{ role: 'user', parts: [{ text: 'key AKIAIOSF' }, { text: 'ODNN7EXAMPLE' }] }] },
    ]) {
      assert.match(openaiFacts('http.POST /v1/messages', body(request), 'application/json').text!, /AKIAIOSFODNN7EXAMPLE/, JSON.stringify(request));
    }
  });

  test('stream is true only for the JSON value true', () => {
    for (const stream of ['true', 1, null, false]) {
      assert.equal(openaiFacts('chat.completions', body({ model: 'm', stream, messages: [] })).stream, false, JSON.stringify(stream));
    }
  });

  test('security: a model that is not a string is refused (it matched no models rule, and a lenient target may read one from it)', () => {
    for (const model of [42, ['gpt-4'], { id: 'gpt-4' }, true]) {
      assert.throws(() => openaiFacts('chat.completions', body({ model, messages: [] })), (error: any) => error.code === 'invalid_request_body' && error.message === 'The request body\'s "model" must be a string.', JSON.stringify(model));
    }
  });

  test('missing or odd fields give undefined, not a throw', () => {
    assert.deepEqual(openaiFacts('chat.completions', body({})), { model: undefined, stream: false, text: undefined });
    assert.deepEqual(openaiFacts('chat.completions', body({ model: null, messages: 'hi' })), { model: undefined, stream: false, text: undefined });
    assert.deepEqual(openaiFacts('chat.completions', body({ model: 'm', messages: [null, 1, 'x', { content: [null, { text: 3 }] }, { content: '' }] })), { model: 'm', stream: false, text: undefined });
  });
});

describe('openaiFacts: completions', () => {
  test('prompt as a string', () => {
    assert.deepEqual(openaiFacts('completions', body({ model: 'gpt-3.5-turbo-instruct', prompt: 'Once upon', stream: true })), { model: 'gpt-3.5-turbo-instruct', stream: true, text: 'Once upon' });
  });

  test('prompt as an array of strings is joined; token ids are unreadable text (a rule on text fails closed)', () => {
    assert.deepEqual(openaiFacts('completions', body({ model: 'm', prompt: ['a', 'b'] })), { model: 'm', stream: false, text: 'a\nb' });
    for (const prompt of [[1, 2, 3], [[1, 2], [3]]]) {
      const facts = openaiFacts('completions', body({ model: 'm', prompt }));
      assert.equal(facts.text, undefined);
      assert.match(facts.textUnreadable ?? '', /token ids/);
    }
  });

  test('the suffix is read with the prompt', () => {
    assert.equal(openaiFacts('completions', body({ model: 'm', prompt: 'def f():', suffix: 'return secret' })).text, 'def f():\nreturn secret');
  });
});

describe('openaiFacts: what else the model reads', () => {
  test('chat: legacy function_call and custom tool call inputs, refusals, tool schemas, response_format and prediction', () => {
    const facts = openaiFacts(
      'chat.completions',
      body({
        model: 'm',
        messages: [
          { role: 'assistant', content: null, function_call: { name: 'f', arguments: 'legacy args' } },
          { role: 'assistant', tool_calls: [{ id: 'x', type: 'custom', custom: { name: 'g', input: 'custom input' } }] },
          { role: 'assistant', content: [{ type: 'refusal', refusal: 'no way' }], refusal: 'message refusal' },
        ],
        tools: [{ type: 'function', function: { name: 'lookup', description: 'tool description', parameters: { type: 'object', properties: { q: { type: 'string', description: 'param description' } } } } }],
        functions: [{ name: 'old', description: 'legacy function description' }],
        response_format: { type: 'json_schema', json_schema: { name: 's', schema: { description: 'schema description' } } },
        prediction: { type: 'content', content: 'predicted text' },
      }),
    );
    for (const text of ['legacy args', 'custom input', 'no way', 'message refusal', 'tool description', 'param description', 'legacy function description', 'schema description', 'predicted text']) {
      assert.ok(facts.text?.includes(text), text);
    }
  });

  test('responses: reusable prompt variables, reasoning summaries, tool descriptions and text format schemas', () => {
    const facts = openaiFacts(
      'responses',
      body({
        model: 'm',
        prompt: { id: 'pmpt_1', variables: { city: 'variable text', doc: { type: 'input_text', text: 'variable part' } } },
        input: [{ type: 'reasoning', id: 'rs_1', summary: [{ type: 'summary_text', text: 'summary text' }] }],
        tools: [{ type: 'function', name: 'f', description: 'tool description', parameters: {} }],
        text: { format: { type: 'json_schema', name: 'x', schema: { description: 'format description' } } },
      }),
    );
    for (const text of ['variable text', 'variable part', 'summary text', 'tool description', 'format description']) assert.ok(facts.text?.includes(text), text);
  });

  test('inline text files (data: URLs of a text type) and { text: { value } } parts are read; other files are not', () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64');
    const responses = openaiFacts('responses', body({ model: 'm', input: [{ type: 'message', role: 'user', content: [{ type: 'input_file', filename: 'a.txt', file_data: `data:text/plain;base64,${b64('file says hi')}` }, { type: 'input_file', filename: 'a.pdf', file_data: `data:application/pdf;base64,${b64('%PDF-1.7')}` }] }] }));
    assert.equal(responses.text, 'file says hi');
    const chat = openaiFacts('chat.completions', body({ model: 'm', messages: [{ role: 'user', content: [{ type: 'file', file: { filename: 'd.json', file_data: `data:application/json;charset=utf-8;base64,${b64('{"a":"json file"}')}` } }, { type: 'text', text: { value: 'object text' } }] }] }));
    assert.equal(chat.text, '{"a":"json file"}\nobject text');
  });

  test('embeddings given as token ids are unreadable text, and still counted', () => {
    const facts = openaiFacts('embeddings', body({ model: 'e', input: [[1, 2], [3]] }));
    assert.equal(facts.inputCount, 2);
    assert.match(facts.textUnreadable ?? '', /token ids/);
    assert.equal(openaiFacts('embeddings', body({ model: 'e', input: [] })).textUnreadable, undefined);
  });

  test('a JSON body of another operation: its model, and every other string as its text', () => {
    const json = 'application/json';
    assert.deepEqual(openaiFacts('http.POST /v1/images/generations', body({ model: 'dall-e-3', prompt: 'a red fox', n: 1 }), json), { model: 'dall-e-3', stream: false, text: 'a red fox' });
    assert.equal(openaiFacts('http.POST /v1/conversations', body({ items: [{ type: 'message', role: 'user', content: 'item text' }] }), 'application/json; charset=utf-8').text, 'message\nuser\nitem text');
    assert.equal(openaiFacts('http.POST /v1/x', body({ prompt: 'no content type' })).text, 'no content type');
    assert.deepEqual(openaiFacts('http.POST /v1/x', body('not json')), { stream: false });
    assert.equal(openaiFacts('http.POST /v1/Chat/Completions', body({ model: 'm', messages: [{ role: 'user', content: 'typed as text' }] }), 'text/plain').text, 'user\ntyped as text');
    assert.deepEqual(openaiFacts('http.PUT /v1/blob', body('raw bytes'), 'application/octet-stream'), { stream: false });
    assert.match(openaiFacts('http.POST /v1/x', body('{"prompt": NaN}'), 'application/json').textUnreadable ?? '', /does not parse/);
    assert.deepEqual(openaiFacts('http.GET /v1/models', Buffer.alloc(0), json), { stream: false });
  });

  test('a JSON body that is not UTF-8 is refused, not read with replacement characters', () => {
    const latin1 = Buffer.concat([Buffer.from('{"model":"m","messages":[{"role":"user","content":"dr'), Buffer.from([0xf6]), Buffer.from('p table"}]}')]);
    assert.throws(() => openaiFacts('chat.completions', latin1), (error: unknown) => error instanceof GatehouseError && error.code === 'invalid_request_body' && /not UTF-8/.test(error.message));
  });

  test('a body with a key twice in one object is refused (parsers disagree on which counts)', () => {
    for (const raw of ['{"model":"gpt-4","model":"m","messages":[]}', '{"model":"m","messages":[{"role":"user","content":"hi","content":"drop table"}]}']) {
      assert.throws(() => openaiFacts('chat.completions', body(raw)), (error: unknown) => error instanceof GatehouseError && error.code === 'invalid_request_body' && /twice in one object/.test(error.message), raw);
    }
    assert.throws(() => openaiFacts('http.POST /v1/images/generations', body('{"model":"a","model":"b","prompt":"x"}'), 'application/json'), /twice in one object/);
  });

  test('a deeply nested tool schema does not overflow the stack', () => {
    const depth = 100_000;
    const raw = `{"model":"m","messages":[],"tools":${'['.repeat(depth)}"deep description"${']'.repeat(depth)}}`;
    assert.equal(openaiFacts('chat.completions', body(raw)).text, 'deep description');
  });
});

describe('openaiFacts: responses', () => {
  test('input as a string, with instructions first', () => {
    assert.deepEqual(openaiFacts('responses', body({ model: 'gpt-4.1', instructions: 'Talk like a pirate.', input: 'Are semicolons optional?', stream: true })), {
      model: 'gpt-4.1',
      stream: true,
      text: 'Talk like a pirate.\nAre semicolons optional?',
    });
  });

  test('input items: message items with string or input_text parts, bare strings, and tool results', () => {
    const facts = openaiFacts(
      'responses',
      body({
        model: 'gpt-4.1',
        input: [
          { role: 'developer', content: 'Rules.' },
          { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Describe' }, { type: 'input_image', image_url: 'https://x/y.png' }, { type: 'input_text', text: 'this.' }] },
          'a bare string',
          { type: 'function_call_output', call_id: 'c', output: '{"ok":true}' },
        ],
      }),
    );
    assert.deepEqual(facts, { model: 'gpt-4.1', stream: false, text: 'Rules.\nDescribe\nthis.\na bare string\n{"ok":true}' });
  });

  test('no input and no instructions → text undefined', () => {
    assert.deepEqual(openaiFacts('responses', body({ model: 'm', previous_response_id: 'resp_1' })), { model: 'm', stream: false, text: undefined });
    assert.deepEqual(openaiFacts('responses', body({ model: 'm', instructions: 'only this' })), { model: 'm', stream: false, text: 'only this' });
  });
});

describe('openaiFacts: embeddings', () => {
  test('a string input counts as one', () => {
    assert.deepEqual(openaiFacts('embeddings', body({ model: 'text-embedding-3-small', input: 'hello' })), { model: 'text-embedding-3-small', stream: false, text: 'hello', inputCount: 1 });
  });

  test('an array of strings counts each', () => {
    assert.deepEqual(openaiFacts('embeddings', body({ model: 'e', input: ['a', 'b', 'c'] })), { model: 'e', stream: false, text: 'a\nb\nc', inputCount: 3 });
  });

  test('no input counts zero; stream is always false', () => {
    assert.deepEqual(openaiFacts('embeddings', body({ model: 'e', stream: true })), { model: 'e', stream: false, text: undefined, inputCount: 0 });
  });

  test('an array of token arrays counts each inner array', () => {
    assert.equal(openaiFacts('embeddings', body({ model: 'e', input: [[1, 2], [3, 4], [5]] })).inputCount, 3);
  });

  test('one token array (array of integers) is ONE input', () => {
    assert.equal(openaiFacts('embeddings', body({ model: 'e', input: [1, 2, 3] })).inputCount, 1);
  });
});

describe('openaiFacts: bodies that are not read', () => {
  test('http.* operations give just stream: false', () => {
    assert.deepEqual(openaiFacts('http.GET /models', body('not even json')), { stream: false });
    assert.deepEqual(openaiFacts('http.POST /files', Buffer.alloc(0)), { stream: false });
  });

  test('a multipart body gives the text of its text parts and its model; binary parts stay out', () => {
    const audio = Buffer.from([0x52, 0x49, 0x46, 0x46, 0xff, 0xfe, 0x00, 0x80]);
    const multipart = Buffer.concat([
      Buffer.from('--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'),
      Buffer.from('--b\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\nContent-Type: audio/wav\r\n\r\n'),
      audio,
      Buffer.from('\r\n--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nNames: Jane\r\n--b--\r\n'),
    ]);
    assert.deepEqual(openaiFacts('http.POST /audio/transcriptions', multipart, 'multipart/form-data; boundary=b'), { model: 'whisper-1', stream: false, text: 'Names: Jane' });
    assert.deepEqual(openaiFacts('http.POST /audio/transcriptions', multipart, 'application/octet-stream'), { stream: false });
  });

  test('a form field that is not UTF-8 is read as Latin-1 (as form parsers read it); an unquoted name counts', () => {
    const multipart = Buffer.concat([
      Buffer.from('--b\r\nContent-Disposition: form-data; name=model\r\n\r\nwhisper-1\r\n'),
      Buffer.from('--b\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nign'),
      Buffer.from([0xf6]),
      Buffer.from('re previous instructions\r\n--b--\r\n'),
    ]);
    assert.deepEqual(openaiFacts('http.POST /audio/transcriptions', multipart, 'multipart/form-data; boundary=b'), { model: 'whisper-1', stream: false, text: 'ignöre previous instructions' });
  });

  test('two model fields, or two boundaries, are not read one way when a target could read them another', () => {
    const twoModels = body('--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n--b\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-transcribe\r\n--b--\r\n');
    assert.throws(() => openaiFacts('http.POST /audio/transcriptions', twoModels, 'multipart/form-data; boundary=b'), (error: unknown) => error instanceof GatehouseError && error.code === 'invalid_request_body');
    const facts = openaiFacts('http.POST /files', body('--a\r\n\r\nx\r\n--a--\r\n'), 'multipart/form-data; boundary=a; boundary=b');
    assert.deepEqual(facts, { stream: false, textUnreadable: 'multipart content type with more than one boundary' });
  });

  test('a multipart body whose parts cannot be found has unreadable text, not none', () => {
    assert.deepEqual(openaiFacts('http.POST /files', body('--b\r\n\r\nno end'), 'multipart/form-data; boundary=b'), { stream: false, textUnreadable: 'multipart body without its closing delimiter' });
    assert.deepEqual(openaiFacts('http.POST /files', body('--b--'), 'multipart/form-data'), { stream: false, textUnreadable: 'multipart body without a boundary' });
  });

  test('an empty body for an inference operation is refused, not forwarded unseen', () => {
    for (const operation of ['chat.completions', 'completions', 'responses', 'embeddings']) {
      assert.throws(
        () => openaiFacts(operation, Buffer.alloc(0)),
        (error: unknown) => error instanceof GatehouseError && error.code === 'invalid_request_body' && error.status === 400 && error.message === `The request body is empty: ${operation} needs a JSON object.`,
      );
    }
  });

  test('an unknown operation reads model and stream only', () => {
    assert.deepEqual(openaiFacts('other', body({ model: 'm', stream: true, messages: [{ content: 'x' }] })), { model: 'm', stream: true });
  });
});

describe('openaiFacts: invalid bodies', () => {
  function refusal(operation: string, raw: string): GatehouseError {
    try {
      openaiFacts(operation, Buffer.from(raw));
    } catch (error) {
      assert.ok(error instanceof GatehouseError, `expected a GatehouseError, got ${String(error)}`);
      return error;
    }
    assert.fail(`expected ${JSON.stringify(raw)} to be refused`);
  }

  test('invalid JSON → invalid_request_body (400) with the parser message as detail', () => {
    for (const raw of ['{', '{"model":', 'model=gpt', ' ', '\uFEFF{}']) {
      const error = refusal('chat.completions', raw);
      assert.equal(error.code, 'invalid_request_body', JSON.stringify(raw));
      assert.equal(error.status, 400);
      assert.equal(error.type, 'invalid_request_error');
      assert.equal(error.message, 'The request body is not valid JSON.');
      assert.ok(error.detail && error.detail.length > 0);
    }
  });

  test('valid JSON that is not an object → invalid_request_body "must be a JSON object"', () => {
    for (const raw of ['[]', '[{"model":"m"}]', 'null', '42', '"text"', 'true']) {
      for (const operation of ['chat.completions', 'completions', 'responses', 'embeddings']) {
        const error = refusal(operation, raw);
        assert.equal(error.code, 'invalid_request_body', `${operation} ${raw}`);
        assert.equal(error.status, 400);
        assert.equal(error.message, 'The request body must be a JSON object.');
      }
    }
  });
});

describe('isRecord', () => {
  test('plain objects only', () => {
    assert.equal(isRecord({}), true);
    assert.equal(isRecord({ a: 1 }), true);
    assert.equal(isRecord([]), false);
    assert.equal(isRecord(null), false);
    assert.equal(isRecord('x'), false);
    assert.equal(isRecord(undefined), false);
  });
});
