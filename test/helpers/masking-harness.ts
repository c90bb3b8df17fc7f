// An in-process data plane for masking tests: the real HTTP data-plane handler and the
// real local forwarder on 127.0.0.1:0 sockets, in front of a scriptable upstream
// server; a policy that allows with the given obligations; a recorder that keeps the
// outcomes in memory.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Decision, ExchangeOutcome, Obligations } from '../../src/exchange/index.js';
import { createLocalHttpForwarder } from '../../src/forward/index.js';
import { MaskPlanner, type MaskProfile } from '../../src/mask/index.js';
import type { PipelineStages } from '../../src/pipeline/index.js';
import { createDataPlaneHandler, type HttpConnection, type ResponseGuard } from '../../src/protocols/http/index.js';

export interface HarnessOptions {
  readonly profiles?: readonly MaskProfile[];
  readonly connectionMasking?: readonly string[];
  readonly obligations?: Obligations;
  readonly guard?: ResponseGuard;
  readonly maxResponseBody?: number;
  readonly maxBufferBytes?: number;
  /** Replaces the planner built from `profiles` (to force masker errors). */
  readonly planner?: MaskPlanner;
  /** The connection's type (default `openai`). */
  readonly connectionType?: HttpConnection['type'];
  /** The connection target's path (default `/v1`) and query (sent on every request). */
  readonly basePath?: string;
  readonly baseQuery?: string;
}

export interface Harness {
  readonly url: string;
  /** Sets how the upstream answers. */
  upstream(handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): void;
  /** The body of the last request the upstream received. */
  lastUpstreamBody(): string | undefined;
  readonly outcomes: ExchangeOutcome[];
  close(): Promise<void>;
}

export async function startMaskingHarness(options: HarnessOptions): Promise<Harness> {
  let handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void = (_req, _body, res) => res.end();
  let lastBody: string | undefined;
  const upstream = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      lastBody = body.toString('utf8');
      handler(req, body, res);
    });
  });
  const upstreamUrl = await listen(upstream);
  const connection: HttpConnection = {
    name: 'c',
    type: options.connectionType ?? 'openai',
    basePath: options.basePath ?? '/v1',
    baseQuery: options.baseQuery,
    maxRequestBody: 1024 * 1024,
    maxResponseBody: options.maxResponseBody ?? 64 * 1024 * 1024,
    masking: options.connectionMasking,
    forwarder: createLocalHttpForwarder({ name: 'c', origin: upstreamUrl, credential: undefined, ca: undefined, rejectUnauthorized: true, connectTimeoutMs: 5000, headersTimeoutMs: 10_000, bodyTimeoutMs: 10_000 }),
  };
  const decision: Decision = { effect: 'allow', rules: ['test-allow'], reason: 'allowed', policyVersion: 'test', obligations: options.obligations };
  const outcomes: ExchangeOutcome[] = [];
  const stages: PipelineStages = {
    identify: async () => ({ subject: 'key:test', kind: 'service', groups: ['ml'], method: 'api_key', credentialId: 'k1' }),
    policy: { version: 'test', decide: () => decision },
    recorder: {
      open: async () => undefined,
      progress: async () => undefined,
      finish: async (_exchange, outcome) => void outcomes.push(outcome),
      refuse: async (_exchange, _decision, _request, outcome) => void outcomes.push(outcome),
      drain: async () => undefined,
    },
    observe: () => undefined,
  };
  const dataPlane = createDataPlaneHandler({
    connections: new Map([['c', connection]]),
    stages,
    maxRecordedBody: 1024 * 1024,
    masking: { planner: options.planner ?? new MaskPlanner(options.profiles ?? []), maxBufferBytes: options.maxBufferBytes ?? 16 * 1024 * 1024, responseGuard: options.guard ? () => options.guard : undefined },
  });
  const server = createServer(dataPlane);
  const url = await listen(server);
  return {
    url: `${url}/c/c`,
    upstream: (h) => void (handler = h),
    lastUpstreamBody: () => lastBody,
    outcomes,
    async close() {
      server.closeAllConnections();
      upstream.closeAllConnections();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => upstream.close(r)), connection.forwarder.close()]);
    },
  };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An OpenAI chat.completion.chunk SSE event. */
export function chatChunk(delta: Record<string, unknown>, finish: string | null = null): string {
  return `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
}

/** Writes SSE events one by one, with a short pause so each is its own chunk. */
export async function writeEvents(res: ServerResponse, events: readonly string[], gapMs = 2): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const e of events) {
    res.write(e);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  res.end();
}
