// The gateway process (`gatehouse start` from dist/) facing a hostile or broken agent:
// a bare agent in this test process speaks the tunnel protocol (docs/agent.md) and gets
// it wrong on purpose, and a real `gatehouse agent` carries an answer its target cuts.
// Whatever the agent sends, the gateway process stays up, the caller gets a clear error
// (502 envelope, or a cut stream once the answer has started) and the record says so.

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Socket } from 'node:net';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { completeTrailer, connectPath, encodeFrame, encodeHead, exchangePathPrefix, readFrames } from '../../src/agent/protocol.js';
import { gatehouseBin, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';

/** What the bare agent does with each exchange stream it takes. */
type Answer = (stream: ClientHttp2Stream) => void;

interface BareAgent {
  readonly session: ClientHttp2Session;
  /** The next exchange is answered this way. */
  next(answer: Answer): void;
  /** The ids of the exchanges offered to it, in order. */
  readonly offers: string[];
  close(): void;
}

/** The head as the protocol frames it: u32 length, then the bytes (any bytes). */
function rawHead(bytes: string): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32BE(Buffer.byteLength(bytes), 0);
  return Buffer.concat([prefix, Buffer.from(bytes)]);
}

describe('agent, hostile or broken, against the real gateway process', () => {
  let pki: TestPki;
  let gateway: GatewayProcess;
  let agentsUrl: string;
  let adminKey: string;
  let callerKey: string;
  let rawKey: string;
  /** A second agent of the same name has its own key (one live connection per key). */
  let rawKey2: string;
  let target: Server;
  let agentChild: ChildProcess | undefined;

  before(async () => {
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
  - name: raw
    type: http
    via: agent:raw
    access: { groups: [ml] }
  - name: cut
    type: http
    via: agent:edge
    access: { groups: [ml] }
`);
    agentsUrl = /agent endpoint (\S+)/.exec(gateway.stderr())![1]!;
    callerKey = await gateway.createKey('caller', ['ml']);
    adminKey = await gateway.createKey('auditor', ['admins']);
    rawKey = await gateway.createKey('raw-1', ['agent:raw'], ['--kind', 'agent']);
    rawKey2 = await gateway.createKey('raw-2', ['agent:raw'], ['--kind', 'agent']);

    // A target (on 127.0.0.2, which the gateway's config never names) that starts an
    // answer and then dies: its connection is destroyed mid-body.
    target = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('the first part of the answer');
      setTimeout(() => res.socket?.destroy(), 100);
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.2', resolve));
  });

  after(async () => {
    if (agentChild && agentChild.exitCode === null && agentChild.signalCode === null) agentChild.kill('SIGKILL');
    await gateway?.stop();
    await new Promise((resolve) => target?.close(resolve));
    if (pki) rmSync(pki.dir, { recursive: true, force: true });
  });

  /**
   * A bare agent for `raw`. `scripted` answers each exchange as next() says; `answer`
   * answers every one with 200 "ok"; `ignore` reads its offers but never takes one;
   * `no-read` stops reading its control stream after the welcome.
   */
  async function bareAgent(behaviour: 'scripted' | 'answer' | 'ignore' | 'no-read' = 'scripted', key = rawKey, url = agentsUrl): Promise<BareAgent> {
    const session = connect(url, { ca: pki.ca });
    session.on('error', () => undefined);
    const control = session.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${key}` }, { endStream: false });
    control.on('error', () => undefined);
    control.write(encodeFrame({ type: 'hello', name: 'raw', connections: ['raw'], concurrency: 1000, version: 'hostile' }));
    const status = await new Promise((resolve) => control.once('response', (h) => resolve(h[':status'])));
    if (status !== 200) {
      let text = '';
      for await (const chunk of control as AsyncIterable<Buffer>) text += chunk.toString();
      session.destroy();
      throw new Error(`refused (${String(status)}): ${text}`);
    }
    const frames = readFrames(control);
    assert.equal(((await frames.next()).value as { type: string }).type, 'welcome');
    // Keep the link alive as a real agent does, whatever else it does.
    const heartbeat = setInterval(() => control.write(encodeFrame({ type: 'heartbeat', at: Date.now() })), 500);
    session.once('close', () => clearInterval(heartbeat));
    const answers: Answer[] = [];
    const offers: string[] = [];
    if (behaviour !== 'no-read') {
      void (async () => {
        for await (const frame of frames) {
          if (frame['type'] === 'exchange') offers.push(String(frame['id']));
          if (frame['type'] !== 'exchange' || behaviour === 'ignore') continue;
          const stream = session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}${String(frame['id'])}` }, { endStream: false, waitForTrailers: true });
          stream.on('error', () => undefined);
          stream.once('wantTrailers', () => stream.sendTrailers({ [completeTrailer]: '1' }));
          stream.resume();
          const answer =
            behaviour === 'answer'
              ? (s: ClientHttp2Stream) => {
                  s.write(encodeHead({ status: 200, headers: { 'content-type': 'text/plain' } }));
                  s.end('ok');
                }
              : answers.shift();
          stream.once('end', () => answer?.(stream));
        }
      })().catch(() => undefined);
    }
    return { session, offers, next: (answer) => answers.push(answer), close: () => session.destroy() };
  }

  async function rawSessions(): Promise<number> {
    const res = await fetch(`${gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${adminKey}` } });
    return ((await res.json()) as { agents: { name: string }[] }).agents.filter((a) => a.name === 'raw').length;
  }

  async function connectedEdgeAgents(): Promise<number> {
    const res = await fetch(`${gateway.adminUrl}/api/agents`, { headers: { authorization: `Bearer ${adminKey}` } });
    return ((await res.json()) as { agents: { name: string }[] }).agents.filter((a) => a.name === 'edge').length;
  }

  async function waitForRawSessions(count: number): Promise<void> {
    for (let i = 0; i < 300 && (await rawSessions()) !== count; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await rawSessions(), count);
  }

  async function alive(): Promise<void> {
    assert.equal(gateway.child.exitCode, null, `the gateway process exited:\n${gateway.stderr()}\n${gateway.logs().slice(-4000)}`);
    const res = await fetch(`${gateway.adminUrl}/healthz`);
    assert.equal(res.status, 200);
  }

  async function record(id: string): Promise<Record<string, unknown>> {
    for (let i = 0; ; i++) {
      const res = await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } });
      const rec = (await res.json()) as Record<string, unknown>;
      if ((rec['complete'] !== undefined && rec['complete'] !== null) || i >= 100) return rec;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const call = (connection: string, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}/c/${connection}/x`, { headers: { authorization: `Bearer ${callerKey}`, ...headers }, signal: AbortSignal.timeout(25_000) });

  test('malformed answer heads: each caller gets a 502 upstream_failed envelope, the gateway process stays up', async () => {
    const agent = await bareAgent();
    try {
      const heads = [
        JSON.stringify({ error: null }),
        JSON.stringify({ error: 'x' }),
        JSON.stringify({ status: 200 }),
        JSON.stringify({ status: 'abc', headers: {} }),
        JSON.stringify({ status: 1000, headers: {} }),
        JSON.stringify({ status: 101, headers: {} }),
        JSON.stringify({ status: 200, headers: { 'x-a': 'a\r\nset-cookie: planted=1' } }),
        JSON.stringify({ status: 200, headers: { 'bad name': 'a' } }),
        JSON.stringify({ status: 200, headers: { 'x-a': { nested: 1 } } }),
        JSON.stringify([1, 2]),
        '{not json',
      ];
      for (const head of heads) {
        agent.next((stream) => {
          stream.write(rawHead(head));
          stream.end('body');
        });
        const res = await call('raw');
        const body = (await res.json()) as { error: { code: string } };
        assert.equal(res.status, 502, `head ${head}: ${JSON.stringify(body)}`);
        assert.equal(body.error.code, 'upstream_failed', `head ${head}`);
        assert.equal(res.headers.get('set-cookie'), null);
        await alive();
      }
      // A head bigger than the bound: refused the same way, nothing buffered past it.
      agent.next((stream) => {
        const prefix = Buffer.alloc(4);
        prefix.writeUInt32BE(10_000_000, 0);
        stream.write(prefix);
      });
      const big = await call('raw');
      assert.equal(big.status, 502);
      assert.equal(((await big.json()) as { error: { code: string } }).error.code, 'upstream_failed');
      await alive();

      // A well-formed answer on the same link still goes through.
      agent.next((stream) => {
        stream.write(encodeHead({ status: 200, headers: { 'content-type': 'text/plain' } }));
        stream.end('fine');
      });
      const ok = await call('raw');
      assert.equal(ok.status, 200);
      assert.equal(await ok.text(), 'fine');
    } finally {
      agent.close();
      await waitForRawSessions(0);
    }
  });

  test('an agent resetting an answer mid-body with an error code: the caller is cut, the record is incomplete with agent_disconnected, the gateway stays up', async () => {
    const agent = await bareAgent();
    try {
      agent.next((stream) => {
        stream.write(encodeHead({ status: 200, headers: { 'content-type': 'text/plain' } }));
        stream.write('partial ');
        setTimeout(() => stream.close(1 /* PROTOCOL_ERROR */), 100);
      });
      const res = await call('raw');
      assert.equal(res.status, 200);
      const id = res.headers.get('gatehouse-exchange-id')!;
      await assert.rejects(res.text());
      const rec = await record(id);
      assert.equal(rec['complete'], false);
      assert.equal(rec['errorCode'], 'agent_disconnected');
      await alive();
    } finally {
      agent.close();
      await waitForRawSessions(0);
    }
  });

  test('a real agent whose target dies mid-answer: the caller is cut, the record is incomplete with upstream_failed (the target, not the agent), the gateway stays up', async () => {
    const { address, port } = target.address() as AddressInfo;
    writeFileSync(join(gateway.dir, 'edge.key'), await gateway.createKey('edge-1', ['agent:edge'], ['--kind', 'agent']), { mode: 0o600 });
    writeFileSync(join(gateway.dir, 'edge.yaml'), `name: edge\nreconnect: { initial: 100ms, max: 1s }\nconnections:\n  - name: cut\n    target: http://${address}:${port}\n`);
    const child = spawn(process.execPath, [gatehouseBin, 'agent', '--gateway', agentsUrl, '--key', `file:${join(gateway.dir, 'edge.key')}`, '--ca', pki.caPath, '--config', join(gateway.dir, 'edge.yaml')], {
      env: { ...process.env, GATEHOUSE_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    agentChild = child;
    let stderr = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`agent did not connect:\n${stderr}`)), 15_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (/connected to /.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
    });

    const res = await call('cut');
    assert.equal(res.status, 200);
    const id = res.headers.get('gatehouse-exchange-id')!;
    await assert.rejects(res.text());
    const rec = await record(id);
    assert.equal(rec['complete'], false);
    assert.equal(rec['errorCode'], 'upstream_failed');
    assert.equal(await connectedEdgeAgents(), 1, 'the agent stayed connected');
    await alive();
  });

  test('an agent that reads its offers but never takes them: the requests go to the other agent of the same name within seconds', async () => {
    const blackHole = await bareAgent('ignore');
    const good = await bareAgent('answer', rawKey2);
    try {
      await waitForRawSessions(2);
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 6 }, () => call('raw').then(async (r) => `${r.status} ${await r.text()}`)));
      assert.deepEqual(answers, Array(6).fill('200 ok'));
      // queueTimeout is 30 s: nothing waited for it (offers move after 2 s; the bound allows for a loaded machine).
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
      await alive();
    } finally {
      blackHole.close();
      good.close();
      await waitForRawSessions(0);
    }
  });

  test('an agent that stops reading its control stream: it is offered nothing more, then dropped; the other agent serves every request', async () => {
    const stalled = await bareAgent('no-read');
    const good = await bareAgent('answer', rawKey2);
    try {
      await waitForRawSessions(2);
      // Large offers (the caller's headers travel in them) fill the stalled link fast.
      const pad = { 'x-pad': 'p'.repeat(12_000) };
      const started = Date.now();
      const answers = await Promise.all(Array.from({ length: 30 }, () => call('raw', pad).then(async (r) => `${r.status} ${await r.text()}`)));
      assert.deepEqual(answers, Array(30).fill('200 ok'));
      assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
      // Dropped (heartbeat 1 s: three intervals without draining), the good one kept.
      await waitForRawSessions(1);
      assert.match(await gateway.waitForLog(/agent is not reading its control stream/), /agent is not reading its control stream/);
      const after = await call('raw');
      assert.equal(after.status, 200);
      await alive();
    } finally {
      stalled.close();
      good.close();
      await waitForRawSessions(0);
    }
  });

  test('a stolen agent key used while its agent is connected: refused with 409 agent_key_in_use, gets no traffic; usable again once the agent is gone', async () => {
    const real = await bareAgent('answer');
    try {
      await waitForRawSessions(1);
      // The thief: the same key, from another link, a bare agent of its own.
      const thief = connect(agentsUrl, { ca: pki.ca });
      thief.on('error', () => undefined);
      const control = thief.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${rawKey}` }, { endStream: false });
      control.write(encodeFrame({ type: 'hello', name: 'raw', connections: ['raw'], concurrency: 1000, version: 'thief' }));
      const status = await new Promise((resolve) => control.once('response', (h) => resolve(h[':status'])));
      let text = '';
      if (status !== 200) for await (const chunk of control as AsyncIterable<Buffer>) text += chunk.toString();
      thief.destroy();
      assert.equal(status, 409);
      assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'agent_key_in_use');
      assert.equal(await rawSessions(), 1);
      assert.match(await gateway.waitForLog(/agent key already connected; refusing a second connection with it/), /agent key already connected; refusing a second connection with it/);
      for (let i = 0; i < 4; i++) assert.equal((await call('raw')).status, 200);
    } finally {
      real.close();
    }
    // The key's agent gone, the key connects again (an agent restarting).
    await waitForRawSessions(0);
    const again = await bareAgent('answer');
    again.close();
    await waitForRawSessions(0);
  });

  test('an agent reconnecting after a network cut: its old link no longer answers a PING, so it is dropped and the new link taken at once', async () => {
    // The old link runs through a relay that is then frozen: a cut the gateway has not seen.
    const sockets: Socket[] = [];
    let frozen = false;
    const relay = createTcpServer((inbound) => {
      const outbound = tcpConnect(Number(new URL(agentsUrl).port), '127.0.0.1');
      sockets.push(inbound, outbound);
      for (const [from, to] of [[inbound, outbound], [outbound, inbound]] as const) {
        from.on('data', (chunk: Buffer) => {
          if (!frozen) to.write(chunk);
        });
        from.on('error', () => undefined);
      }
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const old = await bareAgent('answer', rawKey, `https://127.0.0.1:${(relay.address() as AddressInfo).port}`);
    let fresh: BareAgent | undefined;
    try {
      await waitForRawSessions(1);
      frozen = true;
      fresh = await bareAgent('answer');
      assert.match(await gateway.waitForLog(/agent key reconnected; its old link does not answer, dropping it/), /agent key reconnected; its old link does not answer, dropping it/);
      await waitForRawSessions(1);
      for (let i = 0; i < 4; i++) assert.equal((await call('raw')).status, 200);
    } finally {
      fresh?.close();
      old.close();
      for (const socket of sockets) socket.destroy();
      relay.close();
    }
    await waitForRawSessions(0);
  });

  test('a rotated agent key: its connected agent is dropped when the overlap ends, and the old key cannot reconnect', async () => {
    const oldKey = await gateway.createKey('raw-rot', ['agent:raw'], ['--kind', 'agent']);
    const agent = await bareAgent('answer', oldKey);
    try {
      await waitForRawSessions(1);
      await gateway.cli(['keys', 'rotate', 'raw-rot', '--overlap', '2s']);
      // Still served during the overlap.
      assert.equal((await call('raw')).status, 200);
      // Heartbeat 1 s: the gateway learns the new expiry within one, and drops at it.
      await waitForRawSessions(0);
      assert.match(await gateway.waitForLog(/agent key expired; dropping the agent/), /agent key expired; dropping the agent/);
      await assert.rejects(bareAgent('answer', oldKey), /refused \(401\).*credential_expired/);
    } finally {
      agent.close();
    }
  });

  test('exchange streams an agent was never given: a malformed id, a guessed one, another agent\'s offer: 404, and the gateway stays up', async () => {
    const holder = await bareAgent('ignore');
    const other = await bareAgent('answer', rawKey2);
    try {
      await waitForRawSessions(2);
      const take = async (agent: BareAgent, id: string) => {
        const stream = agent.session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}${id}` }, { endStream: true });
        stream.on('error', () => undefined);
        stream.resume();
        return new Promise((resolve) => {
          stream.once('response', (h) => resolve(h[':status']));
          stream.once('close', () => resolve('closed'));
        });
      };
      assert.equal(await take(other, '%E0%A4%A'), 404);
      await alive();
      assert.equal(await take(other, 'x_00000000-0000-0000-0000-000000000000'), 404);
      // A request offered to the holder (least busy first: send until one is).
      const pending: Promise<Response>[] = [];
      while (holder.offers.length === 0 && pending.length < 10) {
        pending.push(call('raw'));
        await new Promise((r) => setTimeout(r, 100));
      }
      const stolen = holder.offers[0]!;
      assert.ok(stolen, 'no exchange was offered to the holder');
      assert.equal(await take(other, encodeURIComponent(stolen)), 404);
      // The holder takes none: its offer moves to the other agent, which answers it.
      for (const res of await Promise.all(pending)) assert.equal(res.status, 200);
      await alive();
    } finally {
      holder.close();
      other.close();
      await waitForRawSessions(0);
    }
  });

  test('a hello announcing connection names the config could not hold (a terminal escape) is refused with 400', async () => {
    const session = connect(agentsUrl, { ca: pki.ca });
    session.on('error', () => undefined);
    try {
      const control = session.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${rawKey}` }, { endStream: false });
      control.write(encodeFrame({ type: 'hello', name: 'raw', connections: ['raw', '\u001b[2Jforged'], concurrency: 4, version: 'hostile' }));
      const status = await new Promise((resolve) => control.once('response', (h) => resolve(h[':status'])));
      assert.equal(status, 400);
      assert.equal(await rawSessions(), 0);
    } finally {
      session.destroy();
    }
  });
});
