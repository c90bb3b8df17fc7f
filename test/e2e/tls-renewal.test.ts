// End to end: a renewed listener certificate (cert-manager, ACME) is put in place by a
// reload (SIGHUP), for new connections, without a restart. It used to be read and
// dropped ("config changes not applied: restart the gateway", restartNeeded
// ["gateway"]), so every renewal meant a restart and the streams it cuts.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../helpers/tls.js';
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

/** The subject CN of the certificate a new TLS connection to `url` is given. */
function servedCommonName(url: string, ca: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca, servername: 'localhost' }, () => {
      const cn = socket.getPeerCertificate().subject.CN;
      socket.end();
      resolve(Array.isArray(cn) ? cn.join(',') : (cn ?? ''));
    });
    socket.on('error', reject);
  });
}

describe('listener certificate renewal', () => {
  let pki: TestPki;
  let gateway: GatewayProcess;
  let adminKey: string;

  before(async () => {
    pki = makeTestPki();
    // The files the config names, renewed in place below (as cert-manager does).
    copyFileSync(pki.certPath, join(pki.dir, 'live.pem'));
    copyFileSync(pki.keyPath, join(pki.dir, 'live.key'));
    const yaml = `gateway:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: "file:${join(pki.dir, 'live.pem')}", key: "file:${join(pki.dir, 'live.key')}" }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
connections:
  - name: llm
    type: openai
    target: http://127.0.0.1:9/v1
    access: { groups: [ml] }
`;
    gateway = await startGatewayProcess(yaml);
    adminKey = await gateway.createKey('ops', ['admins']);
  });

  after(async () => {
    await gateway?.stop();
    rmSync(pki.dir, { recursive: true, force: true });
  });

  test('SIGHUP after the certificate files are renewed: new connections get the new certificate, no restart is asked for', async () => {
    assert.equal(await servedCommonName(gateway.url, pki.ca), '127.0.0.1');
    const run = (...args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: 'pipe' });
    run('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'renewed.key', '-out', 'renewed.csr', '-subj', '/CN=renewed-gateway');
    writeFileSync(join(pki.dir, 'renewed.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    run('x509', '-req', '-in', 'renewed.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'renewed.pem', '-days', '2', '-extfile', 'renewed.cnf');
    copyFileSync(join(pki.dir, 'renewed.key'), join(pki.dir, 'live.key'));
    copyFileSync(join(pki.dir, 'renewed.pem'), join(pki.dir, 'live.pem'));
    gateway.child.kill('SIGHUP');
    const logs = await gateway.waitForLog(/TLS certificate renewed/);
    const line = logs.split('\n').find((l) => l.includes('TLS certificate renewed'));
    assert.ok(line, logs);
    assert.match(line!, /"listener":"gateway"/);
    assert.match(line!, /"subject":"CN=renewed-gateway"/);
    assert.ok(!logs.includes('config changes not applied'), logs);
    assert.equal(await servedCommonName(gateway.url, pki.ca), 'renewed-gateway');
    // The next reload compares with the renewed certificate: nothing to restart for.
    const res = await fetch(`${gateway.adminUrl}/api/policy/reload`, { method: 'POST', headers: { authorization: `Bearer ${adminKey}` } });
    assert.deepEqual(((await res.json()) as { restartNeeded: string[] }).restartNeeded, []);
  });
});
