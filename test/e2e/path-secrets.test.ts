// Security regression: a credential in an HTTP path (`/users/sk-live-…`, `/token/ghp_…`,
// an AWS key id, a JWT as a segment, a credential as a query value under any name)
// is kept out of what the gateway records, logs and exports: the recorded operation
// and path carry its type label, the log line too, /metrics holds no path at all.
// Policy still decides on the real path and the target gets the path as sent.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const openaiKey = 'sk-live-4eC39HqLyjWDarjtT1zdp7dc';
const githubToken = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
const awsKeyId = 'AKIAIOSFODNN7EXAMPLE';
const jwt = 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U';
const secrets = [openaiKey, githubToken, awsKeyId, jwt];

const configYaml = (upstream: string) => `gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
connections:
  - { name: api, type: http, target: "${upstream}", access: { groups: [ml] } }
policy:
  rules:
    - name: no-leaked-github-tokens
      effect: deny
      match: { connections: [api], paths: ['/api/token/ghp_*'] }
`;

describe('a credential in the URL path is not recorded, logged or exported', () => {
  let upstream: Server;
  let gateway: GatewayProcess;
  let key: string;
  let adminKey: string;
  const seen: string[] = [];

  before(async () => {
    upstream = createServer((req, res) => {
      seen.push(req.url!);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    gateway = await startGatewayProcess(configYaml(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`));
    key = await gateway.createKey('bot', ['ml']);
    adminKey = await gateway.createKey('auditor', ['admins']);
  });
  after(async () => {
    await gateway?.stop();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  const get = (path: string) => fetch(`${gateway.url}${path}`, { headers: { authorization: `Bearer ${key}` } });
  const record = async (id: string) => (await (await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as Record<string, any>;
  const noSecret = (where: string, text: string) => {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${where} holds ${secret.slice(0, 8)}…`);
  };

  test('allowed: the target gets the path as sent; the record and log carry type labels', async () => {
    const cases: [string, string][] = [
      [`/api/v1/users/${openaiKey}`, '/api/v1/users/[OPENAI_KEY]'],
      [`/api/keys/${awsKeyId}/rotate`, '/api/keys/[AWS_ACCESS_KEY]/rotate'],
      [`/api/session/${jwt}`, '/api/session/[JWT]'],
      [`/api/search?q=${openaiKey}&page=2`, '/api/search?q=[OPENAI_KEY]&page=2'],
    ];
    for (const [path, recordedPath] of cases) {
      const response = await get(`/c/api${path}`);
      assert.equal(response.status, 200, path);
      assert.equal(seen.at(-1), path, 'the target gets the path as sent');
      const recorded = await record(response.headers.get('gatehouse-exchange-id')!);
      assert.equal(recorded['request'].path, recordedPath);
      assert.equal(recorded['operation'], `http.GET ${recordedPath.split('?')[0]}`);
      noSecret('the record', JSON.stringify(recorded));
    }
  });

  test('refused by a rule on the real path: the caller learns the rule, the record holds a label', async () => {
    const before = seen.length;
    const response = await get(`/c/api/api/token/${githubToken}`);
    assert.equal(response.status, 403);
    const body = await response.text();
    assert.match(body, /no-leaked-github-tokens/);
    assert.equal(seen.length, before, 'nothing was forwarded');
    const recorded = await record(response.headers.get('gatehouse-exchange-id')!);
    assert.equal(recorded['operation'], 'http.GET /api/token/[GITHUB_TOKEN]');
    assert.equal(recorded['decision'], 'deny');
    noSecret('the record', JSON.stringify(recorded));
  });

  test('a credential in place of the connection name is not echoed back', async () => {
    const response = await get(`/c/${githubToken}/x`);
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { message: string } };
    assert.equal(body.error.message, 'No connection named "[GITHUB_TOKEN]" is configured on this gateway.');
  });

  test("a Gatehouse API key in the URL, the caller's own included, is recorded and logged as its label", async () => {
    // The gateway's own key format was not a credential type: a key pasted in a path or
    // a query value under any name was recorded, logged and exported as sent.
    const pasted = await gateway.createKey('pasted-in-url', ['ml']);
    const secret = pasted.slice('ghk_'.length + 17);
    const cases: [string, Record<string, string>, number, string][] = [
      [`/api/v1/keys/${pasted}`, { authorization: `Bearer ${key}` }, 200, '/api/v1/keys/[GATEHOUSE_KEY]'],
      [`/api/search?q=${pasted}`, { authorization: `Bearer ${key}` }, 200, '/api/search?q=[GATEHOUSE_KEY]'],
      // no Authorization: refused 401, and recorded as a failed authentication
      [`/api/v1/models?x=${pasted}`, {}, 401, '/api/v1/models?x=[GATEHOUSE_KEY]'],
    ];
    const logsBefore = gateway.logs().length;
    for (const [path, headers, status, recordedPath] of cases) {
      const response = await fetch(`${gateway.url}/c/api${path}`, { headers });
      assert.equal(response.status, status, path);
      const recorded = await record(response.headers.get('gatehouse-exchange-id')!);
      assert.equal(recorded['request'].path, recordedPath);
      assert.ok(!JSON.stringify(recorded).includes(secret), `the record of ${recordedPath} holds the key`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    const logs = gateway.logs().slice(logsBefore);
    assert.match(logs, /"operation":"http.GET \/api\/v1\/keys\/\[GATEHOUSE_KEY\]"/);
    assert.ok(!logs.includes(secret), 'the log holds the key');
  });

  test('logs, sessions list, audit events, export and /metrics hold no credential', async () => {
    const headers = { authorization: `Bearer ${adminKey}` };
    noSecret('the sessions list', await (await fetch(`${gateway.adminUrl}/api/sessions?limit=100`, { headers })).text());
    noSecret('the audit events', await (await fetch(`${gateway.adminUrl}/api/audit/events?limit=500`, { headers })).text());
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`, { headers })).text();
    noSecret('/metrics', metrics);
    assert.ok(!metrics.includes('/api/'), '/metrics carries no path');
    const { stdout } = await gateway.cli(['sessions', 'list', '--json']);
    noSecret('gatehouse sessions list', stdout);
    // The log lines are flushed asynchronously.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const logs = gateway.logs();
    assert.match(logs, /"operation":"http.GET \/api\/token\/\[GITHUB_TOKEN\]"/);
    noSecret('the log', logs);
  });
});
