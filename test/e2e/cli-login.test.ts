// End to end: `gatehouse login` (device authorization grant) against a real OpenID
// provider; the token lands in $XDG_CONFIG_HOME/gatehouse/credentials.json with mode
// 0600, and `gatehouse whoami --admin URL` uses it against the real gateway.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, gatehouseBin, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc.js';

describe('gatehouse login (device flow)', () => {
  let upstream: DemoUpstream;
  let idp: TestOidcProvider;
  let gateway: GatewayProcess;
  let home: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'gatehouse-xdg-'));
    upstream = await startDemoUpstream({ apiKey: 'sk-up' });
    idp = await startOidcProvider({ groups: { carol: ['Platform-Admins'] } });
    const identity = `identity:\n  oidc:\n    issuers:\n      - { name: corp, issuer: "${idp.issuer}", audience: "${idp.audience}", groupMap: { Platform-Admins: admins } }\n`;
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url) + identity, { env: { UPSTREAM_KEY: 'sk-up' } });
  });
  after(async () => {
    await gateway?.stop();
    await idp?.close();
    await upstream?.close();
    rmSync(home, { recursive: true, force: true });
  });

  test('login stores the token with mode 0600 and whoami uses it on the admin API', async () => {
    const env = { ...process.env, XDG_CONFIG_HOME: home };
    const child = spawn(process.execPath, [gatehouseBin, 'login', '--issuer', idp.issuer, '--client-id', 'gatehouse-cli', '--audience', idp.audience, '--scope', 'openid api'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const userCode = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no user code in 30 s: ${stderr}`)), 30_000); // a loaded CI machine starts node slowly
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const match = /confirm the code (\S+)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    await idp.completeDeviceFlow(userCode, 'carol');
    assert.equal(await exited, 0, stderr);
    const path = join(home, 'gatehouse', 'credentials.json');
    assert.match(stderr, new RegExp(`credentials saved to ${path}`));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.equal(statSync(join(home, 'gatehouse')).mode & 0o777, 0o700);
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { issuer: string; accessToken: string };
    assert.equal(stored.issuer, idp.issuer);

    const whoami = await runCli(['whoami', '--admin', gateway.adminUrl], env);
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.deepEqual(JSON.parse(whoami.stdout), { subject: 'oidc:corp:carol', kind: 'human', groups: ['admins'], method: 'oidc' });

    // once the access token has expired, whoami says so and how to renew it
    writeFileSync(path, JSON.stringify({ ...stored, expiresAt: Date.now() - 60_000 }), { mode: 0o600 });
    const expired = await runCli(['whoami', '--admin', gateway.adminUrl], env);
    assert.equal(expired.code, 1, 'a failure, not a usage error');
    assert.match(expired.stderr, /the sign-in stored in .*credentials\.json expired at .*; run gatehouse login again/);
  });

  const startLogin = (args: string[], env: NodeJS.ProcessEnv) => {
    const child = spawn(process.execPath, [gatehouseBin, 'login', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
    const userCode = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no user code in 30 s: ${stderr}`)), 30_000);
      child.stderr.on('data', () => {
        const match = /confirm the code (\S+)/.exec(stderr);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      });
    });
    return { exited, userCode };
  };
  const noStack = (stderr: string) => assert.doesNotMatch(stderr, /\n\s+at /, `a stack trace was printed:\n${stderr}`);

  test('an issuer or admin URL without a scheme is a usage error (exit 2) naming the flag, not a stack trace', async () => {
    const login = await runCli(['login', '--issuer', 'login.example.com', '--client-id', 'gatehouse-cli']);
    assert.equal(login.code, 2, login.stderr);
    assert.match(login.stderr, /--issuer must be a URL such as https:\/\/login\.example\.com \(got "login\.example\.com"\)/);
    noStack(login.stderr);
    const whoami = await runCli(['whoami', '--admin', 'localhost:8081']);
    assert.equal(whoami.code, 2, whoami.stderr);
    assert.match(whoami.stderr, /--admin must be a URL/);
  });

  test('a client id the IdP does not know: exit 1 with the IdP\'s error code and what to check', async () => {
    const result = await runCli(['login', '--issuer', idp.issuer, '--client-id', 'no-such-client'], { ...process.env, XDG_CONFIG_HOME: home });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /cannot start the device sign-in: the identity provider answered 401 invalid_client .*check --client-id/);
    noStack(result.stderr);
  });

  test('an issuer URL that is no OpenID provider (the gateway\'s admin URL) says so', async () => {
    const result = await runCli(['login', '--issuer', gateway.adminUrl, '--client-id', 'gatehouse-cli'], { ...process.env, XDG_CONFIG_HOME: home });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /is not an OpenID provider: \/\.well-known\/openid-configuration answered 404; --issuer must be the IdP's issuer URL/);
    noStack(result.stderr);
  });

  test('a sign-in declined in the browser: exit 1 saying so, nothing stored', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'gatehouse-xdg-'));
    try {
      const { exited, userCode } = startLogin(['--issuer', idp.issuer, '--client-id', 'gatehouse-cli', '--audience', idp.audience, '--scope', 'openid api'], { ...process.env, XDG_CONFIG_HOME: empty });
      await idp.declineDeviceFlow(await userCode);
      const { code, stderr } = await exited;
      assert.equal(code, 1, stderr);
      assert.match(stderr, /sign-in failed: the identity provider answered 400 access_denied .*declined/);
      noStack(stderr);
      assert.throws(() => statSync(join(empty, 'gatehouse', 'credentials.json')), /ENOENT/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  test('whoami against an admin API that does not answer: exit 1 naming the address', async () => {
    const signedIn = mkdtempSync(join(tmpdir(), 'gatehouse-xdg-'));
    mkdirSync(join(signedIn, 'gatehouse'), { mode: 0o700 });
    writeFileSync(join(signedIn, 'gatehouse', 'credentials.json'), JSON.stringify({ issuer: idp.issuer, clientId: 'gatehouse-cli', accessToken: 'not-sent-anywhere' }), { mode: 0o600 });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const result = await runCli(['whoami', '--admin', `http://127.0.0.1:${port}`], { ...process.env, XDG_CONFIG_HOME: signedIn });
    rmSync(signedIn, { recursive: true, force: true });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, new RegExp(`cannot reach the admin API at http://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED`));
    noStack(result.stderr);
  });

  test('whoami without a stored credential says how to sign in', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'gatehouse-xdg-'));
    const result = await runCli(['whoami', '--admin', gateway.adminUrl], { ...process.env, XDG_CONFIG_HOME: empty });
    rmSync(empty, { recursive: true, force: true });
    assert.equal(result.code, 1, 'a failure, not a usage error');
    assert.match(result.stderr, /not signed in .*run gatehouse login/);
  });
});
