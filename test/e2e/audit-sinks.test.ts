// Audit sinks lose nothing: every chained event reaches every sink, in seq order, at
// least once. A webhook that is down for a while gets the events chained meanwhile once
// it is back; a gateway SIGKILLed with records in its journal, which a CLI command then
// applies, sends those records' events after its restart.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import SQLite from 'better-sqlite3';
import { startDemoUpstream, type DemoUpstream } from '../../src/demo/upstream.js';
import { demoConnectionYaml, startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.js';

const upstreamKey = 'sk-upstream-audit-sinks';
const env = { UPSTREAM_KEY: upstreamKey, HOOK_SECRET: 'hook-secret' };

/** A webhook receiver on a fixed port that can go down (closed socket) and come back. */
class Receiver {
  readonly seqs: number[] = [];
  port = 0;
  #server: Server | undefined;
  async up(): Promise<void> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        for (const line of body.trim().split('\n')) this.seqs.push((JSON.parse(line) as { seq: number }).seq);
        res.end();
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.#server.address() as AddressInfo).port;
  }
  async down(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise((resolve) => this.#server?.close(resolve));
  }
}

function chainSeqs(dir: string): number[] {
  const db = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
  try {
    return (db.prepare('select seq from audit_events order by seq').all() as { seq: number }[]).map((r) => r.seq);
  } finally {
    db.close();
  }
}

/** Every chained seq was received, first seen in seq order (a repeat, at-least-once, is allowed). */
function assertAllInOrder(received: readonly number[], chained: readonly number[], what: string): void {
  const firstSeen: number[] = [];
  const seen = new Set<number>();
  for (const seq of received) if (!seen.has(seq)) (seen.add(seq), firstSeen.push(seq));
  assert.deepEqual(chained.filter((seq) => !seen.has(seq)), [], `${what}: every chained event delivered`);
  assert.deepEqual(firstSeen, [...firstSeen].sort((a, b) => a - b), `${what}: in seq order`);
}

async function until(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('audit sinks deliver every chained event', () => {
  let upstream: DemoUpstream;
  let receiver: Receiver;
  let dir: string;
  let gateway: GatewayProcess | undefined;

  before(async () => {
    upstream = await startDemoUpstream({ apiKey: upstreamKey });
    receiver = new Receiver();
    await receiver.up();
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-sinks-'));
  });
  after(async () => {
    await gateway?.stop();
    await receiver.down();
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const config = () =>
    demoConnectionYaml(
      upstream.url,
      `audit:
  sinks:
    - { type: file, path: ${join(dir, 'siem.jsonl')} }
    - { type: webhook, url: "http://127.0.0.1:${receiver.port}/siem", secret: "\${HOOK_SECRET}", timeout: 2s }
`,
    );
  const fileSeqs = () => readFileSync(join(dir, 'siem.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq);
  const chat = (key: string, content: string) =>
    fetch(`${gateway!.url}/c/demo/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'demo-chat', messages: [{ role: 'user', content }] }),
    }).then(async (res) => (assert.equal(res.status, 200), await res.text()));

  test('events chained while the webhook is down reach it once it is back, in order', { timeout: 60_000 }, async () => {
    gateway = await startGatewayProcess(config(), { env, dir });
    const key = await gateway.createKey('bot', ['ml']);
    await until(() => receiver.seqs.length > 0, 5000, 'the first events');
    await receiver.down();
    for (let i = 0; i < 5; i++) await chat(key, `while down ${i}`);
    await gateway.createKey('another', ['ml']); // chained by a CLI command
    await new Promise((resolve) => setTimeout(resolve, 2500)); // a few failed attempts
    assert.match(gateway.logs(), /not delivered: .*ECONNREFUSED.*; retrying in \d+ s \(attempt \d+\)","msg":"audit sink failed"/);
    await receiver.up();
    const chained = chainSeqs(dir);
    await until(() => chained.every((seq) => receiver.seqs.includes(seq)), 20_000, 'the webhook to catch up');
    assertAllInOrder(receiver.seqs, chained, 'webhook');
    assertAllInOrder(fileSeqs(), chained, 'file');
  });

  test('a SIGKILLed gateway whose journal a CLI command applies: its records reach the sinks after restart', { timeout: 60_000 }, async () => {
    const key = await gateway!.createKey('bot2', ['ml']);
    await receiver.down(); // nothing reaches the webhook from the gateway that dies
    await Promise.all(Array.from({ length: 20 }, (_, i) => chat(key, `before the kill ${i}`)));
    await gateway!.stop('SIGKILL');
    gateway = undefined;
    // The CLI applies whatever the dead gateway's journal held, chaining its events.
    const beforeCli = chainSeqs(dir).at(-1)!;
    await import('../helpers/gateway-process.js').then(({ runCli }) => runCli(['sessions', 'list', '--limit', '1', '--config', join(dir, 'gatehouse.yaml')], { ...process.env, ...env }));
    const chained = chainSeqs(dir);
    assert.ok(chained.at(-1)! >= beforeCli);
    const finished = new SQLite(join(dir, 'gatehouse.db'), { readonly: true });
    const count = (finished.prepare(`select count(*) as n from exchanges where prompt_text like 'before the kill%'`).get() as { n: number }).n;
    finished.close();
    assert.equal(count, 20, 'every exchange of the dead gateway is recorded');
    await receiver.up();
    gateway = await startGatewayProcess(config(), { env, dir });
    await until(() => chained.every((seq) => receiver.seqs.includes(seq)), 20_000, 'the webhook to get the dead gateway’s events');
    await until(() => { const seqs = new Set(fileSeqs()); return chained.every((seq) => seqs.has(seq)); }, 10_000, 'the file to get them');
    assertAllInOrder(receiver.seqs, chained, 'webhook');
    assertAllInOrder(fileSeqs(), chained, 'file');
  });
});
