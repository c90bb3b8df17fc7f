// Raw byte streams through the agent hub (exchange kind `tcp`, docs/agent.md), against a
// bare agent speaking the protocol, one rule per test:
// - bytes both ways, and half-close in each direction: the gateway's end() reaches the
//   agent as END_STREAM while the agent can still answer; the agent's END_STREAM with
//   the completion trailer ends the gateway's readable side while it can still write;
// - an agent that ends without the trailer, or resets the stream, is a cut:
//   agent_disconnected, never a clean end;
// - an agent error head (e.g. it does not serve the connection) refuses the open, and
//   so does any head but 200;
// - a stream opened `near` another goes to the same agent session.

import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { startAgentHub, type AgentHub } from '../../src/agent/agent-hub.js';
import { completeTrailer, connectPath, encodeFrame, encodeHead, exchangePathPrefix, readFrames } from '../../src/agent/protocol.js';
import { GatehouseError } from '../../src/errors/index.js';
import { makeTestPki, type TestPki } from '../helpers/tls.js';
import { silent } from './helpers.js';

interface BareAgent {
  readonly session: ClientHttp2Session;
  /** The next exchange stream the gateway offers, opened and answered with `head`. */
  nextStream(head?: Parameters<typeof encodeHead>[0], trailer?: boolean): Promise<{ stream: ClientHttp2Stream; frame: Record<string, unknown> }>;
  close(): void;
}

async function bareAgent(hub: AgentHub, pki: TestPki, name: string): Promise<BareAgent> {
  const session = connect(hub.url, { ca: pki.ca });
  session.on('error', () => undefined);
  const control = session.request({ ':method': 'POST', ':path': connectPath, authorization: `Bearer ${name}` }, { endStream: false });
  control.write(encodeFrame({ type: 'hello', name: 'edge', connections: ['db'], concurrency: 8, version: 'test' }));
  const frames = readFrames(control);
  assert.equal(((await frames.next()).value as { type: string }).type, 'welcome');
  const waiting: ((frame: Record<string, unknown>) => void)[] = [];
  const pending: Record<string, unknown>[] = [];
  void (async () => {
    for await (const frame of frames) {
      if (frame['type'] !== 'exchange') continue;
      const next = waiting.shift();
      if (next) next(frame);
      else pending.push(frame);
    }
  })().catch(() => undefined);
  return {
    session,
    async nextStream(head = { status: 200, headers: {} }, trailer = true) {
      const frame = pending.shift() ?? (await new Promise<Record<string, unknown>>((resolve) => waiting.push(resolve)));
      const stream = session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}${String(frame['id'])}` }, { endStream: false, waitForTrailers: true });
      stream.on('error', () => undefined);
      stream.once('wantTrailers', () => (trailer ? stream.sendTrailers({ [completeTrailer]: '1' }) : stream.close()));
      stream.write(encodeHead(head));
      return { stream, frame };
    },
    close: () => session.destroy(),
  };
}

/** Everything a readable side delivers until it ends; rejects if it errors first. */
function readAll(stream: Duplex | ClientHttp2Stream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (d: Buffer) => (text += d.toString()));
    stream.once('end', () => resolve(text));
    stream.once('error', reject);
  });
}

describe('raw byte streams through the agent hub', () => {
  let pki: TestPki;
  let hub: AgentHub;
  let agents: BareAgent[] = [];

  before(async () => {
    pki = makeTestPki();
    hub = await startAgentHub({
      listen: { host: '127.0.0.1', port: 0 },
      tls: { cert: pki.cert, key: pki.key },
      heartbeatMs: 10_000,
      queueTimeoutMs: 5_000,
      // Every bearer is an agent key for agent:edge; its name is its subject.
      verify: async (token) => ({ subject: `key:${token}`, kind: 'agent', groups: ['agent:edge'], method: 'api_key', credentialId: token }),
      routes: new Map([['db', 'edge']]),
      logger: silent,
    });
  });
  after(async () => {
    for (const agent of agents) agent.close();
    await hub.close();
  });
  const open = (near?: Duplex) => hub.openStream({ agent: 'edge', connection: 'db', credential: { user: 'role', secret: 'pw' }, acceptTimeoutMs: 5_000, near });

  test('bytes both ways; the gateway half-closes first and still gets the answer', async () => {
    const agent = await bareAgent(hub, pki, 'a1');
    agents.push(agent);
    const [socket, { stream, frame }] = await Promise.all([open(), agent.nextStream()]);
    assert.deepEqual({ kind: frame['kind'], connection: frame['connection'], credential: frame['credential'] }, { kind: 'tcp', connection: 'db', credential: { user: 'role', secret: 'pw' } });
    const answer = readAll(socket);
    socket.end('ping');
    assert.equal(await readAll(stream), 'ping'); // the gateway's END_STREAM reached the agent
    stream.end('pong after your end'); // the agent can still write, then ends with the trailer
    assert.equal(await answer, 'pong after your end');
  });

  test('the agent half-closes first (trailer): the gateway reads the end and can still write', async () => {
    const [socket, { stream }] = await Promise.all([open(), agents[0]!.nextStream()]);
    const answer = readAll(socket);
    stream.end('bye');
    assert.equal(await answer, 'bye');
    const received = readAll(stream);
    socket.end('still here');
    assert.equal(await received, 'still here');
  });

  test('an agent that ends without the completion trailer, or resets the stream, is a cut: agent_disconnected', async () => {
    const [socket, { stream }] = await Promise.all([open(), agents[0]!.nextStream(undefined, false)]);
    stream.end('partial');
    await assert.rejects(readAll(socket), (error: GatehouseError) => error.code === 'agent_disconnected');

    const [reset, { stream: other }] = await Promise.all([open(), agents[0]!.nextStream()]);
    other.write('some');
    setTimeout(() => other.close(0x8 /* CANCEL */), 50);
    await assert.rejects(readAll(reset), (error: GatehouseError) => error.code === 'agent_disconnected');
  });

  test('an error head refuses the open with its code', async () => {
    const [refused] = await Promise.allSettled([open(), agents[0]!.nextStream({ error: { code: 'connection_not_found', detail: 'not served here' } })]);
    assert.equal(refused.status, 'rejected');
    assert.equal((refused as PromiseRejectedResult).reason.code, 'agent_unavailable');
    assert.match((refused as PromiseRejectedResult).reason.detail, /not served here/);
  });

  test('a head that is neither 200 nor an error refuses the open: upstream_failed', async () => {
    const [refused] = await Promise.allSettled([open(), agents[0]!.nextStream({ status: 302, headers: { location: 'elsewhere' } })]);
    assert.equal(refused.status, 'rejected');
    assert.equal((refused as PromiseRejectedResult).reason.code, 'upstream_failed');
    assert.match((refused as PromiseRejectedResult).reason.detail, /status 302 on a byte stream/);
  });

  test('a stream opened near another goes through the same agent session', async () => {
    const second = await bareAgent(hub, pki, 'a2');
    agents.push(second);
    // One stream on each agent (least outstanding first).
    const [, s2] = await Promise.all([open(), open(), agents[0]!.nextStream(), second.nextStream()]);
    // Near the second agent's stream: unpinned, the tie would go to the first agent.
    const near = open(s2 as Duplex);
    const taken = await Promise.race([second.nextStream().then(() => 'second agent'), new Promise((r) => setTimeout(() => r('not the second agent within 2 s'), 2_000))]);
    assert.equal(taken, 'second agent');
    await near;
  });
});
