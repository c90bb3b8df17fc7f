// End to end: rules on paths and operations see the path as a target resolves it.
// A caller must not get past a rule by spelling the path differently: percent-escapes
// (`model.safetenso%72s`), doubled slashes (`//admin/x`), a trailing slash after
// `chat/completions` (routed alike by many servers), or `%2F..%2F` to leave the base path.

import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const configYaml = (upstream: string) => `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
log: { level: info }
connections:
  - { name: demo, type: openai, target: "${upstream}/v1", access: { groups: [ml] } }
  - { name: files, type: http, target: "${upstream}/files", access: { groups: [ml] } }
policy:
  packs: [model-weights]
  rules:
    - name: no-drop-table
      effect: deny
      message: Dropping tables through the assistant is not allowed.
      when:
        - keywords: [drop table]
    - name: no-admin
      effect: deny
      match: { connections: [files], paths: ['/admin/*'] }
`;

describe('policy on paths, end to end', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let key: string;
  let dir: string;
  const seen: string[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }));
      });
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-policy-paths-'));
    gateway = await startGatewayProcess(configYaml(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`), { dir });
    key = await gateway.createKey('bot', ['ml']);
  });

  after(async () => {
    await gateway?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  /** A request with the path sent exactly as written (fetch would normalise some). */
  function send(method: string, path: string, body?: string, extra: Record<string, string> = {}): Promise<{ status: number; json: Record<string, any> }> {
    const url = new URL(gateway.url);
    return new Promise((resolve, reject) => {
      const req = request({ host: url.hostname, port: url.port, method, path, headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...extra } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode!, json: text ? (JSON.parse(text) as Record<string, any>) : {} }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('a trailing slash after chat/completions is still a chat completion: its prompt is inspected', async () => {
    seen.length = 0;
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'please drop table users' }] });
    for (const path of ['/c/demo/chat/completions/', '/c/demo//chat//completions', '/c/demo/chat/completion%73']) {
      const { status, json } = await send('POST', path, body);
      assert.equal(status, 403, path);
      assert.equal(json['error']?.rule, 'no-drop-table', path);
    }
    assert.deepEqual(seen, []);
  });

  test('a pack rule on file extensions holds for percent-escaped spellings of the path', async () => {
    seen.length = 0;
    for (const path of ['/c/files/model.safetenso%72s', '/c/files/model%2Esafetensors', '/c/files/w/model.gguf?x=1']) {
      const { status, json } = await send('GET', path);
      assert.equal(status, 403, path);
      assert.equal(json['error']?.rule, 'model-weights:download', path);
    }
    assert.deepEqual(seen, []);
  });

  test('a rule on a path prefix holds for doubled slashes and escaped letters', async () => {
    seen.length = 0;
    for (const path of ['/c/files//admin/users', '/c/files/%61dmin/users']) {
      const { status, json } = await send('GET', path);
      assert.equal(status, 403, path);
      assert.equal(json['error']?.rule, 'no-admin', path);
    }
    assert.deepEqual(seen, []);
  });

  test('escaped dot segments and malformed escapes are refused; a plain path is forwarded as sent', async () => {
    seen.length = 0;
    const dots = await send('GET', '/c/files/public%2F..%2Fadmin/users');
    assert.equal(dots.status, 400);
    assert.equal(dots.json['error']?.code, 'invalid_path');
    const malformed = await send('GET', '/c/files/x%zz');
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json['error']?.code, 'invalid_path');
    assert.deepEqual(seen, []);
    const ok = await send('GET', '/c/files/docs/read%20me.txt');
    assert.equal(ok.status, 200);
    assert.deepEqual(seen, ['GET /files/docs/read%20me.txt']);
  });

  test('a backslash is read as a slash: the operation and path rules hold as WHATWG URL targets route it', async () => {
    seen.length = 0;
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'please drop table users' }] });
    for (const path of ['/c/demo/chat\\completions', '/c/demo/chat%5Ccompletions']) {
      const { status, json } = await send('POST', path, body);
      assert.equal(status, 403, path);
      assert.equal(json['error']?.rule, 'no-drop-table', path);
    }
    const admin = await send('GET', '/c/files/admin\\users');
    assert.equal(admin.status, 403);
    assert.equal(admin.json['error']?.rule, 'no-admin');
    assert.deepEqual(seen, []);
  });

  test('a fragment, a ;param or an encoded NUL in the path is refused, not forwarded', async () => {
    seen.length = 0;
    const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'please drop table users' }] });
    for (const [method, path] of [
      ['POST', '/c/demo/chat/completions#x'],
      ['POST', '/c/demo/chat/completions;x'],
      ['GET', '/c/files/model.safetensors#x'],
      ['GET', '/c/files/model.safetensors;x'],
      ['GET', '/c/files/admin;x/users'],
      ['GET', '/c/files/model.safetensors%00'],
      ['GET', '/c/files/model.safetensors%00.txt'],
    ] as const) {
      const { status, json } = await send(method, path, method === 'POST' ? body : undefined);
      assert.equal(status, 400, path);
      assert.equal(json['error']?.code, 'invalid_path', path);
    }
    assert.deepEqual(seen, []);
    // Encoded, `;` and `#` are plain characters of a name.
    const ok = await send('GET', '/c/files/docs/a%3Bb%23c.txt?x=1;y');
    assert.equal(ok.status, 200);
    assert.deepEqual(seen, ['GET /files/docs/a%3Bb%23c.txt?x=1;y']);
  });

  test('a method-override header that changes the method is refused: a rule on GET would not have seen it', async () => {
    seen.length = 0;
    for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
      const { status, json } = await send('POST', '/c/files/model.safetensors', undefined, { [header]: 'get' });
      assert.equal(status, 405, header);
      assert.equal(json['error']?.code, 'method_not_allowed', header);
      assert.match(json['error']?.message, /method-override header/);
    }
    assert.deepEqual(seen, []);
    // One that names the request's own method changes nothing, and travels on.
    const same = await send('GET', '/c/files/docs/readme.txt', undefined, { 'x-http-method-override': 'GET' });
    assert.equal(same.status, 200);
    assert.deepEqual(seen, ['GET /files/docs/readme.txt']);
  });

  test('gatehouse policy check decides on the same path as the gateway', async () => {
    const file = gateway.configPath;
    const result = await runCli(['policy', 'check', '--config', file, '--as', 'key:bot', '--groups', 'ml', '--connection', 'files', '--method', 'GET', '--path', '/model.safetenso%72s']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^decision\s+deny \(rule-deny\)\nrules\s+model-weights:download\n/);
    const bad = await runCli(['policy', 'check', '--config', file, '--as', 'key:bot', '--groups', 'ml', '--connection', 'files', '--method', 'GET', '--path', '/x%zz']);
    assert.notEqual(bad.code, 0);
    assert.equal(bad.stderr, 'gatehouse: --path /x%zz: The path has a malformed percent-escape.\n');
  });
});
