// A CLI command that talks to an HTTPS admin listener with a private CA (`agents list`)
// said only "cannot reach the admin API at https://…: fetch failed", and no doc said how
// the CLI trusts that CA. It now says the certificate is not trusted and how to give the
// CA (NODE_EXTRA_CA_CERTS), which then works.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

describe('CLI against an HTTPS admin listener with a private CA', () => {
  let pki: TestPki;
  let gateway: GatewayProcess;
  let adminKey: string;

  before(async () => {
    pki = makeTestPki();
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
  tls: { cert: "file:${pki.certPath}", key: "file:${pki.keyPath}" }
connections:
  - name: llm
    type: openai
    target: http://127.0.0.1:9/v1
    access: { groups: [ml] }
`);
    adminKey = await gateway.createKey('ops', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  test('agents list: the CA not trusted is named with the way to trust it; with NODE_EXTRA_CA_CERTS it answers', async () => {
    const { NODE_EXTRA_CA_CERTS: _, ...env } = process.env;
    const refused = await runCli(['agents', 'list', '--admin', gateway.adminUrl, '--config', gateway.configPath], { ...env, GATEHOUSE_ADMIN_KEY: adminKey });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^gatehouse: cannot reach the admin API at https:\/\/127\.0\.0\.1:\d+: UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate\. The admin API's TLS certificate is not trusted here: give its CA to the CLI with NODE_EXTRA_CA_CERTS=\/path\/to\/ca\.pem/);
    const trusted = await runCli(['agents', 'list', '--admin', gateway.adminUrl, '--config', gateway.configPath], { ...env, GATEHOUSE_ADMIN_KEY: adminKey, NODE_EXTRA_CA_CERTS: pki.caPath });
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.match(trusted.stdout, /the agent endpoint is not enabled on this gateway/);
  });
});
