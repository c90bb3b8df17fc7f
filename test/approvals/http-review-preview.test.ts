// Security regression: on an `http` connection (body not read as a prompt) a review
// showed the operation alone (`http.POST /jobs`): the reviewer saw neither the query
// (`?dry_run=true`, which the approval is bound to) nor the body it approved. The
// preview is now the request line with its query and the body as recorded, with
// credentials as their type label.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';

let upstream: Server;
let gateway: Gateway;
let dir: string;
let callerKey: string;
let adminKey: string;

before(async () => {
  upstream = createServer((req, res) => req.resume().on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}')));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-http-preview-'));
  const yaml = `gateway: { listen: { host: 127.0.0.1, port: 0 } }
admin: { listen: { host: 127.0.0.1, port: 0 }, groups: [admins] }
log: { level: silent }
store: { sqlite: { path: ${join(dir, 'g.db')} } }
connections:
  - { name: jobs, type: http, target: "http://127.0.0.1:${(upstream.address() as AddressInfo).port}/api", access: { groups: [ops] } }
approvals:
  defaults: { reviewers: [admins], holdFor: 300ms }
policy:
  rules:
    - { name: job-writes, effect: require_approval, match: { connections: [jobs], methods: [POST] } }
`;
  gateway = await startGateway(parseConfig(yaml, join(dir, 'gatehouse.yaml'), {}), { logger: createLogger('silent') });
  callerKey = (await gateway.apiKeys.create({ name: 'ops-bot', kind: 'service', groups: ['ops'], expiresAt: null })).token;
  adminKey = (await gateway.apiKeys.create({ name: 'auditor', kind: 'human', groups: ['admins'], expiresAt: null })).token;
});

after(async () => {
  await gateway?.close();
  await new Promise((resolve) => upstream?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

test('a review of an http request shows its request line, query and body', async () => {
  const res = await fetch(`${gateway.dataPlaneUrl}/c/jobs/jobs?dry_run=true&token=ghp_16C7e42F292c6912E7710c838347Ae178B4a`, {
    method: 'POST',
    headers: { authorization: `Bearer ${callerKey}`, 'content-type': 'application/json' },
    body: '{"job":"wipe-tenant-42","key":"AKIAIOSFODNN7EXAMPLE"}',
  });
  assert.equal(res.status, 403);
  const id = ((await res.json()) as { error: { review_id: string } }).error.review_id;
  const review = (await (await fetch(`${gateway.adminUrl}/api/reviews/${id}`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { promptPreview: string | null };
  assert.equal(review.promptPreview, 'POST /jobs?dry_run=true&token=[redacted]\n{"job":"wipe-tenant-42","key":"[AWS_ACCESS_KEY]"}');
});
