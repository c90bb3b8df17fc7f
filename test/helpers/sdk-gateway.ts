// An in-process gateway (startGateway: real config, policy, masking, recording, admin
// API) in front of a scriptable upstream that a test makes speak the OpenAI wire
// format, for tests driven by the official openai client. Real sockets on 127.0.0.1:0.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { parseConfig } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { startGateway, type Gateway } from '../../src/server/index.js';

/** The target's credential the gateway injects (the caller never sees it). */
export const upstreamKey = 'sk-upstream-secret-0123456789abcdef';

/** startSdkGateway options for a connection whose answers go through a `pii` profile that redacts. */
export const redactingPii = { connectionYaml: '    masking: [pii]\n', extraYaml: 'masking:\n  profiles:\n    pii: { operator: redact }\n' } as const;

export type UpstreamHandler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;

export interface SdkGateway {
  readonly gateway: Gateway;
  /** The data-plane base URL of connection `openai` (`…/c/openai`). */
  readonly baseURL: string;
  /** How the upstream answers the next requests. */
  upstream(handler: UpstreamHandler): void;
  /** Requests the upstream received (method, url, headers, body), oldest first. */
  readonly received: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: Buffer }>;
  /** An openai client with a key in `groups`. */
  client(groups: string[], options?: ConstructorParameters<typeof OpenAI>[0]): Promise<OpenAI>;
  /** The recorded exchange, read through the admin API. */
  session(id: string): Promise<Record<string, any>>;
  /** The ids of the exchanges a full-text search (`GET /api/sessions?text=`) finds. */
  search(text: string): Promise<string[]>;
  close(): Promise<void>;
}

/**
 * `extraYaml` is appended to the config (masking, policy …); `connectionYaml` to the
 * `openai` connection (indented four spaces, e.g. `    masking: [pii]\n`).
 */
export async function startSdkGateway(options: { extraYaml?: string; connectionYaml?: string; gatewayYaml?: string } = {}): Promise<SdkGateway> {
  let handler: UpstreamHandler = (_req, _body, res) => res.end('{}');
  const received: SdkGateway['received'] = [];
  const upstream: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-sdk-'));
  const config = parseConfig(
    `gateway:
  listen: { host: 127.0.0.1, port: 0 }
${options.gatewayYaml ?? ''}admin:
  listen: { host: 127.0.0.1, port: 0 }
  groups: [admins]
log: { level: silent }
store:
  sqlite: { path: ${join(dir, 'g.db')} }
connections:
  - name: openai
    type: openai
    target: http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1
    credential: { secret: "\${SDK_UPSTREAM_KEY}" }
    access: { groups: [ml, admins] }
${options.connectionYaml ?? ''}${options.extraYaml ?? ''}`,
    join(dir, 'gatehouse.yaml'),
    { ...process.env, SDK_UPSTREAM_KEY: upstreamKey },
  );
  const gateway = await startGateway(config, { logger: createLogger('silent') });
  const { token: adminKey } = await gateway.apiKeys.create({ name: 'auditor', kind: 'service', groups: ['admins'], expiresAt: null });
  let keys = 0;
  return {
    gateway,
    baseURL: `${gateway.dataPlaneUrl}/c/openai`,
    received,
    upstream(next) {
      handler = next;
    },
    async client(groups, clientOptions) {
      const { token } = await gateway.apiKeys.create({ name: `caller-${++keys}`, kind: 'service', groups, expiresAt: null });
      return new OpenAI({ baseURL: `${gateway.dataPlaneUrl}/c/openai`, apiKey: token, maxRetries: 0, ...clientOptions });
    },
    async session(id) {
      await gateway.settleRecords();
      const res = await fetch(`${gateway.adminUrl}/api/sessions/${id}`, { headers: { authorization: `Bearer ${adminKey}` } });
      if (res.status !== 200) throw new Error(`session ${id}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, any>;
    },
    async search(text) {
      await gateway.settleRecords();
      const res = await fetch(`${gateway.adminUrl}/api/sessions?text=${encodeURIComponent(text)}`, { headers: { authorization: `Bearer ${adminKey}` } });
      if (res.status !== 200) throw new Error(`search ${text}: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id);
    },
    async close() {
      await gateway.close();
      upstream.closeAllConnections();
      await new Promise((resolve) => upstream.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Writes SSE events (`data: <json>`), each in its own write, then `[DONE]` unless `done: false`. */
export async function writeSse(res: ServerResponse, events: ReadonlyArray<unknown>, options: { done?: boolean; named?: boolean; gapMs?: number } = {}): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const event of events) {
    const type = options.named && typeof event === 'object' && event !== null && 'type' in event ? `event: ${(event as { type: string }).type}\n` : '';
    res.write(`${type}data: ${JSON.stringify(event)}\n\n`);
    if (options.gapMs) await new Promise((resolve) => setTimeout(resolve, options.gapMs));
  }
  if (options.done !== false) res.write('data: [DONE]\n\n');
  res.end();
}
