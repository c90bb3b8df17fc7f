// End to end with real processes: the real `gatehouse start` and a real `gatehouse
// agent` (both from dist/), the demo upstream on 127.0.0.2 — an address the gateway's
// config never names, reachable only through the agent, which holds the target's key.
// Driven by the official openai client: chat, streamed completion, SIGKILL of the agent
// mid-stream (clean error for the caller, record incomplete with agent_disconnected),
// restart of the agent (traffic resumes, same gateway process), and SIGTERM of the agent
// while an answer streams (it finishes the answer, then exits); SIGHUP is ignored, logged.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import OpenAI from 'openai';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { gatehouseBin, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

const upstreamKey = 'sk-target-key-only-the-agent-holds';
const longPrompt = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' '); // within the demo's echo limit

interface AgentProcess {
  readonly child: ChildProcess;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

describe('agent, end to end with real processes', () => {
  let upstream: DemoUpstream;
  let pki: TestPki;
  let gateway: GatewayProcess;
  let agentsUrl: string;
  let adminKey: string;
  let client: OpenAI;
  const agents: AgentProcess[] = [];

  async function startAgentProcess(): Promise<AgentProcess> {
    const child = spawn(
      process.execPath,
      [gatehouseBin, 'agent', '--gateway', agentsUrl, '--key', `file:${join(gateway.dir, 'agent.key')}`, '--ca', pki.caPath, '--config', join(gateway.dir, 'agent.yaml')],
      { env: { ...process.env, TARGET_KEY: upstreamKey, GATEHOUSE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stdout!.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not connect in 15 s:\n${stderr}`)), 15_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/gatehouse agent: connected to /.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(({ code }) => {
        clearTimeout(timer);
        reject(new Error(`agent exited with ${code}:\n${stderr}`));
      });
    });
    const agent = { child, stderr: () => stderr, exited };
    agents.push(agent);
    return agent;
  }

  async function record(id: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } });
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, unknown>;
  }

  /** The record is written when the answer ends; poll briefly for it. */
  async function recordWhenWritten(id: string): Promise<Record<string, unknown>> {
    for (let i = 0; ; i++) {
      const rec = await record(id);
      if (rec['complete'] !== undefined && rec['complete'] !== null) return rec;
      if (i >= 100) return rec;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async function connectedAgents(): Promise<number> {
    const res = await fetch(`${gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${adminKey}` } });
    return ((await res.json()) as { agents: unknown[] }).agents.length;
  }

  before(async () => {
    upstream = await startDemoUpstream({ host: '127.0.0.2', apiKey: upstreamKey, streamDelayMs: 40 });
    pki = makeTestPki();
    gateway = await startGatewayProcess(`gateway:
  listen: { host: 127.0.0.1, port: 0 }
admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: info }
agents:
  listen: { host: 127.0.0.1, port: 0 }
  tls: { cert: file:${pki.certPath}, key: file:${pki.keyPath} }
  heartbeat: 1s
connections:
  - name: demo
    type: openai
    via: agent:edge
    access: { groups: [ml] }
`);
    agentsUrl = /agent endpoint (\S+)/.exec(gateway.stderr())![1]!;
    const callerKey = await gateway.createKey('ml-bot', ['ml']);
    adminKey = await gateway.createKey('auditor', ['admins']);
    writeFileSync(join(gateway.dir, 'agent.key'), await gateway.createKey('edge-1', ['agent:edge'], ['--kind', 'agent']), { mode: 0o600 });
    writeFileSync(join(gateway.dir, 'agent.yaml'), `name: edge
reconnect: { initial: 100ms, max: 1s }
connections:
  - name: demo
    target: ${upstream.url}
    credential: { secret: "\${TARGET_KEY}" }
`);
    client = new OpenAI({ baseURL: `${gateway.url}/c/demo`, apiKey: callerKey, maxRetries: 0 });
    await startAgentProcess();
  });

  after(async () => {
    for (const agent of agents) if (agent.child.exitCode === null && agent.child.signalCode === null) agent.child.kill('SIGKILL');
    await gateway?.stop();
    await upstream?.close();
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  /** Runs an agent with `args` until its stderr matches `until` (or it exits), then kills it. */
  async function agentSays(args: string[], until: RegExp): Promise<{ code: number | null; stderr: string }> {
    const child = spawn(process.execPath, [gatehouseBin, 'agent', '--key', `file:${join(gateway.dir, 'agent.key')}`, '--config', join(gateway.dir, 'agent.yaml'), ...args], {
      env: { ...process.env, TARGET_KEY: upstreamKey, GATEHOUSE_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (until.test(stderr)) child.kill('SIGKILL');
    });
    const code = await exited;
    clearTimeout(timer);
    return { code, stderr };
  }

  test('an agent pointed at the wrong place says why: a --ca that is no certificate, another CA, a port without TLS', async () => {
    const key = await agentSays(['--gateway', agentsUrl, '--ca', pki.keyPath], /never/);
    assert.equal(key.code, 2, key.stderr);
    assert.match(key.stderr, /--ca: .*server\.key is not a PEM certificate/);

    const otherPki = makeTestPki();
    try {
      const otherCa = await agentSays(['--gateway', agentsUrl, '--ca', otherPki.caPath], /reconnecting in/);
      assert.match(otherCa.stderr, /disconnected \(.*certificate.*: the gateway's certificate does not verify; check --ca and the host name in --gateway\); reconnecting in/);
    } finally {
      rmSync(otherPki.dir, { recursive: true, force: true });
    }

    const dataPlane = await agentSays(['--gateway', gateway.url.replace('http:', 'https:'), '--ca', pki.caPath], /reconnecting in/);
    assert.match(dataPlane.stderr, /disconnected \(the answer is not TLS \(.*\): --gateway must name the gateway's agents\.listen port\); reconnecting in/);
  });

  test('a chat completion and a streamed completion go through the agent process', async () => {
    const chat = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'hello from e2e' }] });
    assert.equal(chat.choices[0]!.message.content, 'Demo reply to: hello from e2e');
    assert.equal(upstream.lastAuthorization(), `Bearer ${upstreamKey}`);

    const stream = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: 'one two three four' }] });
    let text = '';
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      text += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(text, 'Demo reply to: one two three four');
    assert.ok(chunks >= 4, `expected several chunks, got ${chunks}`);
  });

  test('security: the credential only the agent holds, echoed by the target, is replaced before it enters the tunnel (streamed and not)', async () => {
    // The demo target repeats the prompt: a caller that names the key gets it back (the gateway, which never saw it, cannot scan for it).
    const chat = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: `echo ${upstreamKey}` }] }).withResponse();
    const marked = `Demo reply to: echo [REDACTED:target_credential]${'*'.repeat(upstreamKey.length - 28)}`;
    assert.equal(chat.data.choices[0]!.message.content, marked);
    // (The recorded request holds it: the caller wrote it.)
    const recorded = JSON.stringify((await recordWhenWritten(chat.response.headers.get('gatehouse-exchange-id')!))['response']);
    assert.ok(recorded.includes('[REDACTED:target_credential]') && !recorded.includes(upstreamKey), 'the recorded answer holds the key');
    const stream = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: `echo ${upstreamKey} done` }] });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, `${marked} done`);
  });

  test('SIGKILL of the agent mid-stream: the caller sees the stream cut, the record is incomplete with agent_disconnected; a restarted agent resumes traffic', async () => {
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: longPrompt }] }).withResponse();
    const id = response.headers.get('gatehouse-exchange-id')!;
    let received = '';
    const started = Date.now();
    let cut: Error | undefined;
    try {
      for await (const chunk of stream) {
        received += chunk.choices[0]?.delta?.content ?? '';
        if (received.includes('w3 ') && agents[0]!.child.signalCode === null) agents[0]!.child.kill('SIGKILL');
      }
    } catch (error) {
      cut = error as Error;
    }
    const rec = await recordWhenWritten(id);
    // undici reports the cut connection as "terminated": the stream did not end cleanly.
    assert.ok(cut, `the stream ended cleanly after the agent was killed; received: ${received}; record: ${JSON.stringify(rec)}`);
    assert.match(`${cut.message} ${String((cut as { cause?: unknown }).cause)}`, /terminated|socket|closed|aborted/i);
    assert.ok(Date.now() - started < 15_000, 'the cut took too long to reach the caller');
    assert.ok(!received.includes('w39'), 'the whole answer arrived although the agent was killed');
    assert.equal((await agents[0]!.exited).signal, 'SIGKILL');

    assert.equal(rec['complete'], false);
    assert.equal(rec['errorCode'], 'agent_disconnected');
    assert.equal(rec['status'], 200);

    // No agent: a clear 503 at once, from the same gateway process.
    for (let i = 0; i < 100 && (await connectedAgents()) > 0; i++) await new Promise((r) => setTimeout(r, 50));
    await assert.rejects(client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'x' }] }), (error: InstanceType<typeof OpenAI.APIError>) => {
      assert.equal(error.status, 503);
      assert.equal(error.code, 'agent_unavailable');
      return true;
    });

    await startAgentProcess();
    const chat = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'back again' }] });
    assert.equal(chat.choices[0]!.message.content, 'Demo reply to: back again');
    assert.equal(gateway.child.exitCode, null, 'the gateway was restarted');
  });

  test('SIGHUP (a config rollout) does not kill the agent: it says it ignores it and keeps carrying traffic', async () => {
    const agent = agents.at(-1)!;
    // process.kill, not child.kill: that would mark the child killed, which the next test reads.
    process.kill(agent.child.pid!, 'SIGHUP');
    for (let i = 0; i < 100 && !/SIGHUP ignored/.test(agent.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(agent.stderr(), /gatehouse agent: SIGHUP ignored: the agent does not reload; restart it to apply a changed config or key/);
    assert.equal(agent.child.exitCode, null);
    assert.equal(agent.child.signalCode, null, 'the agent was killed by SIGHUP');
    const chat = await client.chat.completions.create({ model: 'demo-chat', messages: [{ role: 'user', content: 'after the rollout' }] });
    assert.equal(chat.choices[0]!.message.content, 'Demo reply to: after the rollout');
  });

  test('SIGTERM: the agent finishes the answer in flight, then exits 0; the record is complete', async () => {
    const agent = agents.at(-1)!;
    const { data: stream, response } = await client.chat.completions.create({ model: 'demo-chat', stream: true, messages: [{ role: 'user', content: longPrompt }] }).withResponse();
    let text = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (text.includes('w3 ') && agent.child.signalCode === null && !agent.child.killed) agent.child.kill('SIGTERM');
    }
    assert.equal(text, `Demo reply to: ${longPrompt}`);
    assert.deepEqual(await agent.exited, { code: 0, signal: null });
    assert.match(agent.stderr(), /draining: waiting up to 10000 ms for 1 exchange/);
    const rec = await recordWhenWritten(response.headers.get('gatehouse-exchange-id')!);
    assert.equal(rec['complete'], true);
    assert.equal(rec['errorCode'], null);
  });
});
