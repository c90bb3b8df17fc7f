// The egress-only agent: dials out to each gateway's agent endpoint (HTTP/2 over TLS,
// the gateway's certificate verified against --ca), authenticates with its agent key,
// announces the connections it serves, heartbeats, and carries each exchange the
// gateway offers to its target: HTTP exchanges with a local forwarder, PostgreSQL
// sessions (raw byte streams) with the PostgreSQL relay, which logs in to the
// database. Given several gateways (a scaled-out deployment), it keeps one link to each,
// so every gateway has the agent; each link reconnects on its own with exponential
// backoff and jitter. It never sees the
// caller's credential: the gateway strips it (HTTP) or consumes it at login (PostgreSQL).

import { credentialHeader, maxTimerMs } from '../config/fields.js';
import { connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { pipeline } from 'node:stream/promises';
import { localForwarderFor, mapUpstreamError, type Forwarder } from '../forward/index.js';
import { targetCredentialEntity } from '../mask/index.js';
import type { Logger } from '../observability/index.js';
import { joinUpstreamPath, targetQuery } from '../protocols/http/connection.js';
import { credentialEchoForms, type CredentialEchoForms } from '../protocols/http/credential-echo.js';
import { scrubbedAnswer } from '../protocols/http/credential-echo-stream.js';
import type { AgentConfig } from './agent-config.js';
import { destroySession, resetStream } from './h2-teardown.js';
import { createPostgresRelay, type PostgresRelay } from './postgres-relay.js';
import { completeTrailer, connectPath, encodeFrame, encodeHead, exchangePathPrefix, readFrames, type ExchangeFrame, type HttpExchangeFrame, type ResponseHead, type StreamExchangeFrame } from './protocol.js';

export interface AgentOptions {
  /** The agent endpoint of each gateway it serves: one link per URL. */
  readonly gatewayUrl: string | readonly string[];
  readonly key: string;
  readonly ca?: string | undefined;
  readonly config: AgentConfig;
  readonly logger: Logger;
  readonly version: string;
  /** Human-readable state changes (the CLI prints them on stderr). */
  readonly onState?: (line: string) => void;
}

export interface Agent {
  /**
   * Graceful stop (SIGTERM): tells the gateway to offer nothing new, waits up to
   * `graceMs` for the exchanges in flight to finish, then closes.
   */
  drain(graceMs: number): Promise<void>;
  close(): Promise<void>;
}

/** RST_STREAM code the agent uses when the target failed mid-answer (the agent is fine). */
export const upstreamFailedRstCode = h2.NGHTTP2_INTERNAL_ERROR;

interface Target {
  readonly forwarder: Forwarder;
  readonly basePath: string;
  readonly baseQuery: string;
  readonly hasCredential: boolean;
  /** The agent's own credential, looked for in the target's answers (the gateway cannot: it never sees it). */
  readonly credentialEcho: CredentialEchoForms | undefined;
}

export function startAgent(options: AgentOptions): Agent {
  const { config, logger } = options;
  const targets = new Map<string, Target>();
  const relays = new Map<string, PostgresRelay>();
  for (const c of config.connections) {
    if (c.type === 'postgres') {
      relays.set(c.name, createPostgresRelay(c, config.name, logger));
      continue;
    }
    const url = new URL(c.target);
    const credential = credentialHeader(c.credential);
    targets.set(c.name, {
      basePath: url.pathname.replace(/\/+$/, ''),
      baseQuery: targetQuery(url),
      hasCredential: credential !== undefined,
      credentialEcho: credentialEchoForms(c.credential),
      forwarder: localForwarderFor(c, url.origin, credential),
    });
  }

  const gatewayUrls = typeof options.gatewayUrl === 'string' ? [options.gatewayUrl] : [...options.gatewayUrl];
  // With one gateway the state lines read as they always have; with several, each names its gateway.
  const from = (url: string) => (gatewayUrls.length > 1 ? ` from ${url}` : '');
  let stopped = false;
  let draining = false;
  const links = gatewayUrls.map((url) => startLink(url));

  interface Link {
    loop: Promise<void>;
    readonly inFlight: Map<string, AbortController>;
    current: ClientHttp2Session | undefined;
    control: ClientHttp2Stream | undefined;
    wake: (() => void) | undefined;
  }

  /** One gateway's link: connects, serves what that gateway offers, reconnects. */
  function startLink(gatewayUrl: string): Link {
    const link: Link = { loop: Promise.resolve(), inFlight: new Map(), current: undefined, control: undefined, wake: undefined };
    link.loop = (async () => {
      let attempt = 0;
      while (!stopped) {
        let why = '';
        const welcomed = await runSession(gatewayUrl, link).catch((error: unknown) => {
          // close() ends the link on purpose: that is no failure.
          if (!stopped) logger.warn({ gateway: gatewayUrl, err: (error as Error).message }, 'agent link failed');
          why = ` (${linkFailureHint(error as NodeJS.ErrnoException)})`;
          return false;
        });
        if (stopped) break;
        attempt = welcomed ? 0 : attempt + 1;
        // Exponential backoff with "equal jitter": half the cap, plus a random half.
        const cap = Math.min(config.reconnect.max, config.reconnect.initial * 2 ** Math.min(attempt, 20));
        const delay = cap / 2 + Math.random() * (cap / 2);
        options.onState?.(`disconnected${from(gatewayUrl)}${why}; reconnecting in ${Math.round(delay)} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          link.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
    return link;
  }

  /** One connection's life; resolves true if the gateway welcomed us. */
  async function runSession(gatewayUrl: string, link: Link): Promise<boolean> {
    const { inFlight } = link;
    const session = connect(gatewayUrl, { ...(options.ca === undefined ? {} : { ca: options.ca }), ALPNProtocols: ['h2'] });
    link.current = session;
    let welcomed = false;
    session.on('error', (error) => logger.warn({ gateway: gatewayUrl, err: error.message }, 'agent session error'));
    try {
      const control = session.request(
        { ':method': 'POST', ':path': connectPath, authorization: `Bearer ${options.key}`, 'content-type': 'application/x-ndjson' },
        { endStream: false },
      );
      control.on('error', () => undefined);
      link.control = control;
      control.write(encodeFrame({ type: 'hello', name: config.name, connections: config.connections.map((c) => c.name), concurrency: config.concurrency, version: options.version }));
      const status = await new Promise<number>((resolve, reject) => {
        control.once('response', (headers) => resolve(Number(headers[':status'])));
        // A link that fails to open (refused, a certificate the CA did not sign) closes this
        // stream before the session emits its error: let that error, the real cause, win.
        control.once('close', () => setImmediate(() => reject(new Error('the gateway closed the link before answering'))));
        session.once('error', reject);
      });
      if (status !== 200) {
        let text = '';
        for await (const chunk of control as AsyncIterable<Buffer>) if (text.length < 4096) text += chunk.toString('utf8');
        options.onState?.(`refused by the gateway${gatewayUrls.length > 1 ? ` ${gatewayUrl}` : ''} (${status}): ${text}`);
        return false;
      }
      let lastSeen = Date.now();
      let heartbeat: NodeJS.Timeout | undefined;
      try {
        for await (const frame of readFrames(control)) {
          lastSeen = Date.now();
          if (frame['type'] === 'welcome' && !welcomed) {
            welcomed = true;
            // Within what the gateway's config accepts: a welcome must not make the agent spin (1 ms).
            const every = Math.min(Math.max(Number(frame['heartbeatMs']) || 10_000, 100), maxTimerMs);
            heartbeat = setInterval(() => {
              if (Date.now() - lastSeen > 3 * every) {
                logger.warn({ gateway: gatewayUrl }, 'gateway missed heartbeats; reconnecting');
                destroySession(session);
                return;
              }
              control.write(encodeFrame({ type: 'heartbeat', at: Date.now() }));
            }, every);
            if (draining) control.write(encodeFrame({ type: 'drain' }));
            options.onState?.(`connected to ${gatewayUrl} as ${config.name} (session ${String(frame['session'])})`);
          } else if (frame['type'] === 'exchange') {
            const exchange = frame as unknown as ExchangeFrame;
            void (exchange.kind === 'tcp' ? serveStream(session, exchange, inFlight) : serve(session, exchange, inFlight));
          } else if (frame['type'] === 'cancel') {
            inFlight.get(String(frame['id']))?.abort();
          }
        }
      } finally {
        clearInterval(heartbeat);
      }
      return welcomed;
    } finally {
      destroySession(session);
      for (const controller of inFlight.values()) controller.abort();
    }
  }

  /**
   * The stream that carries one exchange back to the gateway. Only a stream that ends
   * normally (the whole answer written, or the target side ended cleanly) carries the
   * completion trailer; an error or close aborts the exchange's work.
   */
  function openExchangeStream(session: ClientHttp2Session, id: string, controller: AbortController): ClientHttp2Stream {
    const stream = session.request({ ':method': 'POST', ':path': `${exchangePathPrefix}${encodeURIComponent(id)}` }, { endStream: false, waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ [completeTrailer]: '1' }));
    stream.on('error', () => controller.abort());
    stream.once('close', () => controller.abort());
    return stream;
  }

  async function serve(session: ClientHttp2Session, frame: HttpExchangeFrame, inFlight: Map<string, AbortController>): Promise<void> {
    const controller = new AbortController();
    inFlight.set(frame.id, controller);
    let stream: ClientHttp2Stream | undefined;
    try {
      stream = openExchangeStream(session, frame.id, controller);
      const body = await readRequestBody(stream, frame.bodyLength);
      const target = targets.get(frame.connection);
      if (!target) return void stream.end(encodeHead({ error: { code: 'connection_not_found', detail: `agent ${config.name} does not serve connection ${frame.connection}` } }));
      if (!frame.path.startsWith('/')) return void stream.end(encodeHead({ error: { code: 'upstream_failed', detail: 'path must start with /' } }));
      const headers: Record<string, string> = { ...frame.headers };
      // The agent's own credential wins; otherwise the one the gateway sent (if any).
      if (!target.hasCredential && frame.credential) headers[frame.credential.header.toLowerCase()] = frame.credential.value;
      // The answer is scanned for the agent's credential: asked for uncompressed.
      const echo = target.credentialEcho;
      if (echo) headers['accept-encoding'] = 'identity';
      let upstream;
      try {
        upstream = await target.forwarder.forward({
          method: frame.method,
          path: joinUpstreamPath(target.basePath, frame.path, target.baseQuery),
          headers,
          body: body.length > 0 ? body : undefined,
          signal: controller.signal,
        });
      } catch (error) {
        const failure = mapUpstreamError(error, frame.connection);
        return void stream.end(encodeHead({ error: { code: failure.code, detail: failure.detail ?? failure.message } }));
      }
      const counts: Record<string, number> = {};
      const scrubbed = echo ? scrubbedAnswer(upstream, echo, counts, frame.method !== 'HEAD' && upstream.status !== 204 && upstream.status !== 304) : { headers: upstream.headers, body: upstream.body };
      if ('error' in scrubbed) {
        if (upstream.cancel) upstream.cancel();
        else upstream.body.destroy();
        return void stream.end(encodeHead({ error: { code: 'upstream_failed', detail: `connection ${frame.connection}: ${scrubbed.error}` } }));
      }
      const head: ResponseHead = { status: upstream.status, headers: definedHeaders(scrubbed.headers) };
      stream.write(encodeHead(head));
      try {
        await pipeline(scrubbed.body, stream);
        const echoed = counts[targetCredentialEntity];
        if (echoed) logger.warn({ connection: frame.connection, offer: frame.id, scrubbed: echoed }, 'target echoed its credential; replaced in the answer');
        // The pipeline is done when the data is handed over; the completion trailer
        // goes out after it. Wait for the stream to close, so a drain that follows
        // cannot tear the session down before the trailer is sent.
        const done = stream;
        await new Promise<void>((resolve) => {
          if (done.closed) return resolve();
          const timer = setTimeout(resolve, 5_000);
          done.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      } catch (error) {
        logger.warn({ connection: frame.connection, err: (error as Error).message }, 'target answer interrupted');
        resetStream(stream, upstreamFailedRstCode);
      }
    } catch (error) {
      logger.warn({ connection: frame.connection, err: (error as Error).message }, 'exchange failed');
      if (stream) resetStream(stream, h2.NGHTTP2_CANCEL);
    } finally {
      inFlight.delete(frame.id);
    }
  }

  /** A raw byte stream (kind tcp): accepted with a head, then carried by the connection's relay. */
  async function serveStream(session: ClientHttp2Session, frame: StreamExchangeFrame, inFlight: Map<string, AbortController>): Promise<void> {
    const controller = new AbortController();
    inFlight.set(frame.id, controller);
    let stream: ClientHttp2Stream | undefined;
    try {
      stream = openExchangeStream(session, frame.id, controller);
      await gatewayAnswer(stream);
      const relay = relays.get(frame.connection);
      if (!relay) return void stream.end(encodeHead({ error: { code: 'connection_not_found', detail: `agent ${config.name} serves no PostgreSQL connection ${frame.connection}` } }));
      stream.write(encodeHead({ status: 200, headers: {} }));
      await relay.serve(stream, frame, controller.signal);
    } catch (error) {
      logger.warn({ connection: frame.connection, err: (error as Error).message }, 'stream failed');
      if (stream) resetStream(stream, h2.NGHTTP2_CANCEL);
    } finally {
      inFlight.delete(frame.id);
    }
  }

  let closing: Promise<void> | undefined;
  return {
    async drain(graceMs) {
      draining = true;
      for (const link of links) if (link.control && !link.control.destroyed) link.control.write(encodeFrame({ type: 'drain' }));
      const deadline = Date.now() + graceMs;
      const inFlight = () => links.reduce((n, link) => n + link.inFlight.size, 0);
      if (inFlight() > 0) options.onState?.(`draining: waiting up to ${graceMs} ms for ${inFlight()} exchange(s) in flight`);
      while (inFlight() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (inFlight() > 0) options.onState?.(`grace period over: cutting ${inFlight()} exchange(s)`);
      await this.close();
    },
    // Idempotent: a second close() waits for the first.
    close() {
      closing ??= (async () => {
        stopped = true;
        for (const link of links) {
          link.wake?.();
          if (link.current) destroySession(link.current);
        }
        await Promise.all(links.map((link) => link.loop));
        await Promise.all([...targets.values()].map((t) => t.forwarder.close()));
      })();
      return closing;
    },
  };
}

/** Waits for the gateway's 200 on an exchange stream. */
async function gatewayAnswer(stream: ClientHttp2Stream): Promise<void> {
  const status = await new Promise<number>((resolve, reject) => {
    stream.once('response', (headers) => resolve(Number(headers[':status'])));
    stream.once('close', () => reject(new Error('exchange stream closed before the gateway answered')));
  });
  if (status !== 200) throw new Error(`gateway answered ${status} to the exchange stream`);
}

/** Reads the gateway's answer on an exchange stream: exactly the request body. */
async function readRequestBody(stream: ClientHttp2Stream, expected: number): Promise<Buffer> {
  await gatewayAnswer(stream);
  // Listeners, not for-await: an async iterator destroys the stream when it finishes,
  // and this stream must stay open to carry the answer.
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      length += chunk.length;
      if (length > expected) return done(new Error('request body longer than announced'));
      chunks.push(chunk);
    };
    const onEnd = () => (length === expected ? done() : done(new Error('request body shorter than announced')));
    const onClose = () => done(new Error('exchange stream closed while reading the request body'));
    function done(error?: Error) {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onClose);
      if (error) reject(error);
      else resolve(Buffer.concat(chunks, length));
    }
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onClose);
  });
}

function definedHeaders(headers: Readonly<Record<string, string | string[] | undefined>>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = value;
  return out;
}

/**
 * Why the link could not be opened, for the agent's one-line state: the socket's or
 * TLS's error, and for the two a new deployment meets most what to check.
 */
export function linkFailureHint(error: NodeJS.ErrnoException): string {
  const message = error.message.split('\n')[0]!.slice(0, 200);
  if (/certificate|self[- ]signed|CERT_|ERR_TLS_CERT_ALTNAME/i.test(`${error.code ?? ''} ${message}`)) {
    return `${message}: the gateway's certificate does not verify; check --ca and the host name in --gateway`;
  }
  if (/wrong version number|packet length too long|ERR_SSL_WRONG_VERSION_NUMBER/i.test(`${error.code ?? ''} ${message}`)) {
    return `the answer is not TLS (${error.code ?? 'wrong version number'}): --gateway must name the gateway's agents.listen port`;
  }
  return message;
}
