// Streaming sinks that feed a SIEM: every chained event, as one JSON line (the same
// form as an export's events.jsonl), to a file, stdout, or a webhook. The webhook body
// is a batch of lines, signed `gatehouse-signature: sha256=<hex HMAC-SHA256(body)>`.
// A sink only writes one batch and says whether it took it; what to send, in which
// order, and retrying a batch it did not take is sink-delivery.ts's job.

import { createHash, createHmac } from 'node:crypto';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditConfig } from '../config/audit-schema.js';
import type { AuditEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

export interface AuditSink {
  /**
   * The store's name for this sink's cursor: its type and a digest of its path or URL
   * (a webhook URL may carry a token, which the store must not hold).
   */
  readonly key: string;
  /** Resolves once the batch is written (file, stdout) or taken with a 2xx (webhook); rejects otherwise. */
  deliver(events: readonly AuditEvent[]): Promise<void>;
  close(): Promise<void>;
}

export function eventLines(events: readonly AuditEvent[]): string {
  return events.map((e) => `${canonicalJson(e)}\n`).join('');
}

export function signWebhookBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

function sinkKey(type: string, target: string): string {
  return `${type}:${createHash('sha256').update(target).digest('hex').slice(0, 16)}`;
}

export function createSinks(configs: AuditConfig['sinks'], onError: (sink: string, error: unknown) => void): AuditSink[] {
  return configs.map((config): AuditSink => {
    switch (config.type) {
      case 'stdout':
        return { key: 'stdout', deliver: (events) => write(process.stdout, eventLines(events)), close: async () => undefined };
      case 'file': {
        mkdirSync(dirname(config.path), { recursive: true });
        const stream: WriteStream = createWriteStream(config.path, { flags: 'a', mode: 0o600 });
        // Reported here too: an error with no write pending would otherwise be unhandled.
        stream.on('error', (error) => onError('file', error));
        return {
          key: sinkKey('file', config.path),
          deliver: (events) => write(stream, eventLines(events)),
          close: () => new Promise((resolve) => stream.end(resolve)),
        };
      }
      case 'webhook':
        return {
          key: sinkKey('webhook', config.url),
          async deliver(events) {
            const body = eventLines(events);
            const res = await fetch(config.url, {
              method: 'POST',
              headers: { 'content-type': 'application/x-ndjson', 'gatehouse-signature': signWebhookBody(body, config.secret) },
              body,
              signal: AbortSignal.timeout(config.timeout),
            }).catch((error: unknown) => {
              throw new Error(String((error as Error & { cause?: unknown }).cause ?? error));
            });
            await res.arrayBuffer().catch(() => undefined);
            if (!res.ok) throw new Error(`HTTP ${res.status}`);
          },
          close: async () => undefined,
        };
    }
  });
}

/** Resolves when `text` is handed to the OS (the write callback), rejects on a write error. */
function write(stream: NodeJS.WritableStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.write(text, (error) => (error ? reject(error) : resolve()));
  });
}
