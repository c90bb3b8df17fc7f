// An evidence bundle's events verify with the documented standard-tool step for every
// event, whatever text an administrator typed into one. jq writes U+007F (DEL) as
// `\u007f`, which the canonical form (JSON.stringify's escaping) does not, so the jq line
// gives another hash for an event holding one (a revocation's reason): the bundle's
// README and docs/audit.md document a python3 line that checks every event exactly
// (an unpaired surrogate, which JSON.stringify escapes and jq replaces, too). A
// checkpoint's signature verifies with the jq and openssl lines they document.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, runCli, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const execFileAsync = promisify(execFile);
const env = { ...process.env, UPSTREAM_KEY: 'sk-upstream-export-hashes' };

describe('evidence bundle: the documented check of every event hash', () => {
  let upstream: DemoUpstream;
  let gateway: GatewayProcess;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: 'sk-upstream-export-hashes' });
    // A checkpoint every 3 events, so that the bundle holds some to verify.
    gateway = await startGatewayProcess(demoConnectionYaml(upstream.url, 'audit:\n  checkpoint: { every: 3 }\n'), { env });
  });
  after(async () => {
    await gateway?.stop();
    await upstream?.close();
    if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
  });

  test('an event whose text holds DEL verifies with the python3 line of the README (the jq line gives another hash); a checkpoint with the jq and openssl lines', async () => {
    const key = await gateway.createKey('ops-bot', ['ml']);
    const res = await fetch(`${gateway.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content: 'Zoë in 東京 😀' }] }),
    });
    await res.text();
    const revoked = await runCli(['revoke', 'subject', 'key:ops-bot', '--reason', 'left\x7f the team, "Zoë" \\u007f', '--config', gateway.configPath], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    // An unpaired surrogate only JSON can carry, through the admin API.
    const adminKey = await gateway.createKey('sec-admin', ['admins']);
    const lone = await fetch(`${gateway.adminUrl}/api/revocations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminKey}`, 'content-type': 'application/json' },
      body: '{"kind":"subject","value":"key:nobody","reason":"half \\ud800 a pair"}',
    });
    assert.equal(lone.status, 200, await lone.clone().text());
    const out = join(gateway.dir, 'bundle');
    const exported = await runCli(['audit', 'export', '--out', out, '--config', gateway.configPath], env);
    assert.equal(exported.code, 0, exported.stderr);

    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    const python = /^ {7}(python3 -c .*)$/m.exec(readme)?.[1];
    assert.ok(python, 'the README documents a python3 check of every event');
    assert.ok(readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8').includes(`${python}`), 'docs/audit.md documents the same line');

    const lines = readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n');
    const checked = (await execFileAsync('sh', ['-c', python], { cwd: out })).stdout.trim().split('\n');
    assert.equal(checked.length, lines.length);
    assert.deepEqual(checked, lines.map((l) => `${(JSON.parse(l) as { seq: number }).seq} ok`));

    // The event with DEL, and what jq makes of it: the caveat the docs state.
    const withDel = lines.findIndex((l) => l.includes('\x7f'));
    assert.ok(withDel >= 0, 'the revocation event holds the DEL as written');
    const jq = await execFileAsync('sh', ['-c', `sed -n ${withDel + 1}p events.jsonl | jq -cS 'del(.hash)' | tr -d '\\n' | sha256sum`], { cwd: out });
    assert.notEqual(jq.stdout.split(' ')[0], (JSON.parse(lines[withDel]!) as { hash: string }).hash);

    // A checkpoint's signature, with the README's commands as written.
    const checkpointCommands = readme.split('\n').filter((l) => /^ {7}.*checkpoint\.(json|sig)/.test(l)).map((l) => l.trim());
    assert.equal(checkpointCommands.length, 3, 'the README documents how to check a checkpoint');
    const docs = readFileSync(new URL('../../docs/audit.md', import.meta.url), 'utf8');
    for (const command of checkpointCommands) assert.ok(docs.includes(command), `docs/audit.md documents: ${command}`);
    const checkpoint = JSON.parse(readFileSync(join(out, 'checkpoints.jsonl'), 'utf8').split('\n')[0]!) as { seq: number; hash: string };
    assert.equal(checkpoint.hash, (JSON.parse(lines.find((l) => (JSON.parse(l) as { seq: number }).seq === checkpoint.seq)!) as { hash: string }).hash);
    const verified = await execFileAsync('sh', ['-c', checkpointCommands.join(' && ')], { cwd: out });
    assert.match(verified.stdout, /Signature Verified Successfully/);
    writeFileSync(join(out, 'checkpoint.json'), readFileSync(join(out, 'checkpoint.json'), 'utf8').replace(/"seq":\d+/, `"seq":${checkpoint.seq + 1}`));
    await assert.rejects(execFileAsync('sh', ['-c', checkpointCommands[2]!], { cwd: out }), /Signature Verification Failure|Command failed/);

    // A forged event is named.
    const forged = lines.map((l, i) => (i === withDel ? l.replace('left', 'lfet') : l)).join('\n');
    writeFileSync(join(out, 'events.jsonl'), `${forged}\n`);
    const after = (await execFileAsync('sh', ['-c', python], { cwd: out })).stdout.trim().split('\n');
    assert.equal(after[withDel], `${(JSON.parse(lines[withDel]!) as { seq: number }).seq} MISMATCH`);
  });
});
