// Streaming sinks that feed a SIEM: every committed event, as one JSON line (the same
// form as an export's events.jsonl), to a file, stdout, or a webhook. The webhook body
// is a batch of lines, signed `gatehouse-signature: sha256=<hex HMAC-SHA256(body)>`.
// Sinks run after commit and never hold up or fail a request: a webhook batch that
// fails (network error, timeout, non-2xx) or finds 64 batches in flight is dropped,
// not retried, and reported with the seqs it held.

import { createHmac } from 'node:crypto';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditConfig } from '../config/audit-schema.js';
import type { AuditEvent } from './audit-event.js';
import { canonicalJson } from './canonical-json.js';

export interface AuditSink {
  send(events: readonly AuditEvent[]): void;
  close(): Promise<void>;
}

export function eventLines(events: readonly AuditEvent[]): string {
  return events.map((e) => `${canonicalJson(e)}\n`).join('');
}

export function signWebhookBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export function createSinks(configs: AuditConfig['sinks'], onError: (sink: string, error: unknown) => void): AuditSink[] {
  return configs.map((config): AuditSink => {
    switch (config.type) {
      case 'stdout':
        return { send: (events) => void process.stdout.write(eventLines(events)), close: async () => undefined };
      case 'file': {
        mkdirSync(dirname(config.path), { recursive: true });
        const stream: WriteStream = createWriteStream(config.path, { flags: 'a', mode: 0o600 });
        stream.on('error', (error) => onError('file', error));
        return {
          send: (events) => void stream.write(eventLines(events)),
          close: () => new Promise((resolve) => stream.end(resolve)),
        };
      }
      case 'webhook': {
        const maxInFlight = 64;
        const inFlight = new Set<Promise<void>>();
        return {
          send(events) {
            // A batch that is not delivered is not retried: the error names its events,
            // so the gap in the SIEM can be filled from an export.
            const lost = (why: string) => onError('webhook', new Error(`events seq ${events[0]?.seq}..${events.at(-1)?.seq} not delivered: ${why}`));
            if (inFlight.size >= maxInFlight) return lost(`queue full (${maxInFlight} batches in flight)`);
            const body = eventLines(events);
            const sent = fetch(config.url, {
              method: 'POST',
              headers: { 'content-type': 'application/x-ndjson', 'gatehouse-signature': signWebhookBody(body, config.secret) },
              body,
              signal: AbortSignal.timeout(config.timeout),
            })
              .then(async (res) => {
                await res.arrayBuffer().catch(() => undefined);
                if (!res.ok) lost(`HTTP ${res.status}`);
              })
              .catch((error: unknown) => lost(String((error as Error & { cause?: unknown }).cause ?? error)))
              .finally(() => inFlight.delete(sent));
            inFlight.add(sent);
          },
          close: async () => void (await Promise.all(inFlight)),
        };
      }
    }
  });
}
