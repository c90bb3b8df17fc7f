// End to end: the real gatehouse process in front of the demo upstream, driven by the
// official openai client. Proves the data path (plain, streamed, embeddings), the
// refusals (no key, wrong key, expired key, no access) and that each is recorded.

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-target-secret';

describe('OpenAI-compatible proxy, end to end', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;
  let mlKey: string;
  let adminKey: string;
  let client: OpenAI;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey, streamDelayMs: 40 });
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url), { env: { UPSTREAM_KEY: upstreamKey } });
    mlKey = await gateway.createKey('ml-bot', ['ml'], ['--kind', 'agent']);
    adminKey = await gateway.createKey('auditor', ['admins']);
    client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: mlKey, maxRetries: 0 });
  });

  after(async () => {
    await gateway?.stop();
    await upstream?.close();
  });

  async function session(id: string) {
    const res = await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, any>;
  }

  async function latest(filter: string) {
    const res = await fetch(`${gateway.adminUrl}/api/sessions?limit=1&${filter}`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { sessions: Array<Record<string, any>> };
    assert.equal(body.sessions.length, 1, `no session matches ${filter}`);
    return session(body.sessions[0]!.id);
  }

  test('a chat completion passes through, with the target key injected and the caller key stripped', async () => {
    const { data, response } = await client.chat.completions
      .create({ model: 'demo-chat', messages: [{ role: 'user', content: 'What is the capital of France?' }] })
      .withResponse();
    assert.equal(data.choices[0]!.message.content, 'Demo reply to: What is the capital of France?');
    assert.equal(upstream.lastAuthorization(), `Bearer ${upstreamKey}`);
    const id = response.headers.get('gatehouse-exchange-id');
    assert.match(id ?? '', /^ex_/);

    const record = await session(id!);
    assert.equal(record['subject'], 'key:ml-bot');
    assert.equal(record['identityKind'], 'agent');
    assert.deepEqual(record['groups'], ['ml']);
    assert.equal(record['operation'], 'chat.completions');
    assert.equal(record['decision'], 'allow');
    assert.deepEqual(record['rules'], ['connection-access:demo']);
    assert.equal(record['model'], 'demo-chat');
    assert.equal(record['status'], 200);
    assert.equal(record['complete'], true);
    assert.equal(record['request'].promptText, 'What is the capital of France?');
    assert.equal(record['response'].text, 'Demo reply to: What is the capital of France?');
    assert.deepEqual(record['response'].usage, { promptTokens: 6, completionTokens: 9, totalTokens: 15 });
    assert.equal(record['request'].headers.authorization, undefined, 'no credential in the recording');
    assert.ok(!JSON.stringify(record).includes(mlKey), 'the caller key appears nowhere in the record');
    assert.ok(!JSON.stringify(record).includes(upstreamKey), 'the target key appears nowhere in the record');
  });

  test('a streamed chat completion arrives incrementally and is recorded reassembled', async () => {
    const prompt = 'Please stream a reasonably long answer made of several words';
    const stream = await client.chat.completions.create({
      model: 'demo-chat',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: prompt }],
    });
    const arrivals: number[] = [];
    let text = '';
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta?.content;
      if (delta) {
        arrivals.push(performance.now());
        text += delta;
      }
    }
    const expected = `Demo reply to: ${prompt}`;
    assert.equal(text, expected);
    // The upstream waits 40 ms between words: a buffering proxy would deliver all at once.
    assert.ok(arrivals.length >= 10, `expected many deltas, got ${arrivals.length}`);
    const spread = arrivals.at(-1)! - arrivals[0]!;
    assert.ok(spread > 40 * (arrivals.length - 2) * 0.8, `deltas arrived within ${spread.toFixed(0)} ms: the answer was buffered`);

    const record = await latest('subject=key:ml-bot&operation=chat.completions');
    assert.equal(record['stream'], true);
    assert.equal(record['complete'], true);
    assert.equal(record['response'].text, expected);
    assert.equal(record['response'].usage.totalTokens, record['response'].usage.promptTokens + record['response'].usage.completionTokens);
  });

  test('embeddings pass through (base64 and float) and are recorded with their operation', async () => {
    const result = await client.embeddings.create({ model: 'demo-embed', input: ['alpha', 'beta', 'alpha'] });
    assert.equal(result.data.length, 3);
    assert.equal(result.data[0]!.embedding.length, 8);
    assert.deepEqual(result.data[0]!.embedding, result.data[2]!.embedding);
    const float = await client.embeddings.create({ model: 'demo-embed', input: 'alpha', encoding_format: 'float' });
    assert.deepEqual(float.data[0]!.embedding, result.data[0]!.embedding);

    const record = await latest('operation=embeddings');
    assert.equal(record['subject'], 'key:ml-bot');
    assert.equal(record['model'], 'demo-embed');
    assert.equal(record['request'].promptText, 'alpha');
  });

  test('the Responses API and legacy completions are understood', async () => {
    const response = await client.responses.create({ model: 'demo-chat', input: 'Name a colour' });
    assert.equal(response.output_text, 'Demo response to: Name a colour');
    let record = await latest('operation=responses');
    assert.equal(record['response'].text, 'Demo response to: Name a colour');

    const completion = await client.completions.create({ model: 'demo-chat', prompt: 'Once upon a time' });
    assert.equal(completion.choices[0]!.text, 'Demo completion of: Once upon a time');
    record = await latest('operation=completions');
    assert.equal(record['request'].promptText, 'Once upon a time');
  });

  test('a prompt larger than recording.maxBodyBytes is recorded cut at that size, marked truncated, and reaches the target whole', async () => {
    // 100 000 words of two two-byte characters: 500 000 bytes of prompt against the default 256 KiB cap.
    const prompt = 'éé '.repeat(100_000);
    const { data, response } = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: prompt }] }).withResponse();
    assert.equal(data.usage?.prompt_tokens, 100_000, 'the target saw the whole prompt (the demo counts words)');
    const record = await session(response.headers.get('gatehouse-exchange-id')!);
    const recorded: string = record['request'].promptText;
    assert.equal(record['request'].truncated, true);
    assert.ok(Buffer.byteLength(recorded) <= 256 * 1024, `prompt text recorded: ${Buffer.byteLength(recorded)} bytes`);
    assert.ok(recorded.length > 100_000 && prompt.startsWith(recorded), 'the recorded prompt is a prefix cut between characters');
  });

  test('no key: 401 unauthenticated, recorded as a denial', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="gatehouse"');
    const body = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(body, { error: { message: 'No credential was presented. Send "Authorization: Bearer <key>".', type: 'authentication_error', code: 'unauthenticated', param: null } });
    const record = await session(res.headers.get('gatehouse-exchange-id')!);
    assert.equal(record['decision'], 'deny');
    assert.equal(record['status'], 401);
    assert.equal(record['errorCode'], 'unauthenticated');
    assert.equal(record['subject'], null);
  });

  test('a wrong key: 401 invalid_credential through the client, recorded without the key', async () => {
    const forged = mlKey.slice(0, -4) + 'AAAA';
    const bad = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: forged, maxRetries: 0 });
    const error = await bad.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.AuthenticationError);
    assert.equal(error.status, 401);
    assert.equal(error.code, 'invalid_credential');
    const record = await latest('decision=deny');
    assert.equal(record['errorCode'], 'invalid_credential');
    assert.ok(!JSON.stringify(record).includes(forged.slice(21)), 'no secret material in the record');
    assert.ok(!gateway.logs().includes(forged.slice(21)), 'no secret material in the logs');
  });

  test('an expired key: 401 credential_expired', async () => {
    const shortLived = await gateway.createKey('short-lived', ['ml'], ['--expires', '1s']);
    await new Promise((r) => setTimeout(r, 1_200));
    const res = await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${shortLived}` } });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'credential_expired');
  });

  test('a revoked key stops working within a second', async () => {
    const key = await gateway.createKey('to-revoke', ['ml']);
    const ok = await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(ok.status, 200);
    await gateway.cli(['keys', 'revoke', 'to-revoke']);
    await new Promise((r) => setTimeout(r, 1_100));
    const res = await fetch(`${gateway.url}/c/demo/models`, { headers: { authorization: `Bearer ${key}` } });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'credential_revoked');
  });

  test('a group without access: 403 naming the rule, recorded with the identity', async () => {
    const outsiderKey = await gateway.createKey('outsider', ['marketing']);
    const outsider = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: outsiderKey, maxRetries: 0 });
    const error = await outsider.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] }).catch((e: unknown) => e);
    assert.ok(error instanceof OpenAI.PermissionDeniedError);
    assert.equal(error.code, 'access_denied');
    assert.equal((error.error as { rule?: string }).rule, 'default-deny');
    assert.equal(error.message, '403 Access denied: no rule allows key:outsider on connection "demo".');
    const record = await latest('subject=key:outsider');
    assert.equal(record['decision'], 'deny');
    assert.deepEqual(record['rules'], ['default-deny']);
    assert.equal(record['status'], 403);
    assert.equal(record['operation'], 'chat.completions');
  });

  test('unknown connection and route: 404 envelopes', async () => {
    const res = await fetch(`${gateway.url}/c/nope/chat/completions`, { headers: { authorization: `Bearer ${mlKey}` } });
    assert.equal(res.status, 404);
    assert.deepEqual(await res.json(), { error: { message: 'No connection named "nope" is configured on this gateway.', type: 'invalid_request_error', code: 'connection_not_found', param: null } });
    const root = await fetch(`${gateway.url}/v1/chat/completions`);
    assert.equal(root.status, 404);
    assert.equal(((await root.json()) as { error: { code: string } }).error.code, 'route_not_found');
  });

  test('regression: a dot segment cannot leave the connection; malformed admin paths do not crash the gateway', async () => {
    // fetch() would resolve "..": send the raw path.
    const raw = (base: string, path: string, headers: Record<string, string> = {}) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(`${base}${path}`, { headers }, (res) => {
          let body = '';
          res.on('data', (d: Buffer) => (body += d.toString()));
          res.on('end', () => resolve({ status: res.statusCode!, body }));
        });
        req.path = path;
        req.on('error', reject);
        req.end();
      });
    for (const path of ['/c/demo/../admin', '/c/demo/%2e%2e/admin', '/c/demo/./models']) {
      const res = await raw(gateway.url, path, { authorization: `Bearer ${mlKey}` });
      assert.equal(res.status, 400, path);
      assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'invalid_path');
    }
    assert.equal((await raw(gateway.adminUrl, '//')).status, 404);
    assert.equal((await raw(gateway.adminUrl, '/api/sessions/%E0', { authorization: `Bearer ${adminKey}` })).status, 404);
    assert.equal((await fetch(`${gateway.adminUrl}/healthz`)).status, 200, 'the gateway is still up');
  });

  test('invalid JSON to an OpenAI endpoint: 400 before anything is forwarded', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' }, body: '{"model":' });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_request_body');
    // The refusal's record keeps the body as it was sent, and its size: an investigator
    // sees what was refused (the record had no body and "in 0 B").
    const record = await session(res.headers.get('gatehouse-exchange-id')!);
    assert.equal(record['errorCode'], 'invalid_request_body');
    assert.equal(record['request'].body, '{"model":');
    assert.equal(record['bytesIn'], 9);
  });

  test('a compressed JSON body (Content-Encoding): refused, saying the gateway does not read compressed bodies', async () => {
    const json = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'hi' }] });
    for (const [encoding, body] of [['gzip', gzipSync(json)], ['deflate', deflateSync(json)], ['br', brotliCompressSync(json)]] as const) {
      const res = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json', 'content-encoding': encoding }, body });
      assert.equal(res.status, 400, encoding);
      const { error } = (await res.json()) as { error: { code: string; type: string; message: string } };
      assert.deepEqual(error, { ...error, code: 'invalid_request_body', type: 'invalid_request_error', message: `The request body is compressed (Content-Encoding: ${encoding}); the gateway does not read compressed request bodies: send it uncompressed.` });
    }
  });

  test('sessions show names an error without a detail as the code alone (no dangling colon)', async () => {
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${mlKey}`, 'content-type': 'application/json' }, body: '[]' });
    assert.equal(res.status, 400);
    const { stdout } = await gateway.cli(['sessions', 'show', res.headers.get('gatehouse-exchange-id')!]);
    assert.match(stdout, /^result {4}status 400 {2}error invalid_request_body {2}in 2 B, out 0 B$/m);
  });

  test('a request refused by policy after its body was read records its size', async () => {
    const body = JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'not for this key' }] });
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' }, body });
    assert.equal(res.status, 403);
    const record = await session(res.headers.get('gatehouse-exchange-id')!);
    assert.deepEqual([record['decision'], record['request'].body, record['bytesIn']], ['deny', body, Buffer.byteLength(body)]);
  });

  test('the admin API: sessions need an admin key; health, readiness, OpenAPI and metrics answer', async () => {
    assert.equal((await fetch(`${gateway.adminUrl}/api/sessions`)).status, 401);
    const forbidden = await fetch(`${gateway.adminUrl}/api/sessions`, { headers: { authorization: `Bearer ${mlKey}` } });
    assert.equal(forbidden.status, 403);
    assert.deepEqual(await forbidden.json(), { error: { code: 'access_denied', message: 'key:ml-bot is not in an admin group.' } });
    const missing = await fetch(`${gateway.adminUrl}/api/sessions/ex_nope`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(missing.status, 404);
    const badQuery = await fetch(`${gateway.adminUrl}/api/sessions?limit=abc`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(badQuery.status, 400);
    // A misspelt filter is refused, not ignored: the answer would list every session as if filtered.
    const misspelt = await fetch(`${gateway.adminUrl}/api/sessions?subjet=key:ml-bot`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(misspelt.status, 400);
    assert.deepEqual(await misspelt.json(), {
      error: { code: 'invalid_query', message: 'Unknown query parameter "subjet"; this route takes connection, subject, decision, operation, group, rule, review, text, since, until, limit, cursor.' },
    });

    assert.deepEqual(await (await fetch(`${gateway.adminUrl}/healthz`)).json(), { status: 'ok' });
    assert.deepEqual(await (await fetch(`${gateway.adminUrl}/readyz`)).json(), { status: 'ready' });
    const openapi = (await (await fetch(`${gateway.adminUrl}/api/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, any> } };
    assert.equal(openapi.openapi, '3.1.0');
    assert.ok(openapi.paths['/api/sessions/{id}']);
    // Every field the sessions routes answer is in the schema a client is generated from.
    const summaryFields = Object.keys(openapi.components.schemas['SessionSummary'].properties);
    const detailFields = [...summaryFields, ...Object.keys(openapi.components.schemas['SessionDetail'].allOf[1].properties)];
    const listed = (await (await fetch(`${gateway.adminUrl}/api/sessions?limit=1`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { sessions: Array<Record<string, unknown>> };
    assert.deepEqual(Object.keys(listed.sessions[0]!).filter((k) => !summaryFields.includes(k)), []);
    assert.deepEqual(Object.keys(await session(listed.sessions[0]!['id'] as string)).filter((k) => !detailFields.includes(k)), []);

    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    assert.match(metrics, /gatehouse_exchanges_total\{connection="demo",decision="allow",status="200"\} \d+/);
    assert.match(metrics, /gatehouse_exchanges_total\{connection="demo",decision="deny",status="401"\} \d+/);
    assert.match(metrics, /gatehouse_exchange_duration_seconds_bucket\{le="0\.005",connection="demo"\} \d+/);
    // Every record the tests above wrote has been applied (the sessions reads waited for it).
    assert.match(metrics, /^gatehouse_record_journal_pending_batches 0$/m);
    // The full-text indexer (background priority) catches up while the gateway is idle.
    let unindexed = Number(/^gatehouse_search_index_queued_rows (\d+)$/m.exec(metrics)?.[1] ?? NaN);
    for (let i = 0; i < 100 && unindexed !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      unindexed = Number(/^gatehouse_search_index_queued_rows (\d+)$/m.exec(await (await fetch(`${gateway.adminUrl}/metrics`)).text())?.[1] ?? NaN);
    }
    assert.equal(unindexed, 0);
  });

  test('paging through sessions returns every exchange once, newest first', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `${gateway.adminUrl}/api/sessions?limit=3${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await (await fetch(url, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { sessions: Array<{ id: string; startedAt: string }>; next: string | null };
      seen.push(...page.sessions.map((s) => s.id));
      cursor = page.next;
    } while (cursor);
    assert.equal(new Set(seen).size, seen.length);
    assert.ok(seen.length >= 10);
    assert.deepEqual([...seen].sort().reverse(), seen, 'ids are time-ordered, newest first');
  });

  test('logs are JSON lines with no secret in them', () => {
    const lines = gateway.logs().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(lines.some((l) => l['msg'] === 'exchange' && l['subject'] === 'key:ml-bot'));
    const all = gateway.logs();
    for (const secret of [mlKey, adminKey, upstreamKey]) assert.ok(!all.includes(secret));
  });
});
