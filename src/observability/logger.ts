// Structured logs (pino). Serializers keep an allow-list of fields: no request
// headers, no bodies, no credentials ever reach a log line.

import pino, { type Logger } from 'pino';
import { redactPathCredentials } from '../detect/path-credentials.js';
import type { Decision, Exchange, ExchangeOutcome } from '../exchange/index.js';

export type { Logger };

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination({ dest: 1, sync: false })): Logger {
  return pino(
    {
      level,
      base: { service: 'gatehouse' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // Defence in depth: even if a future call site passes one of these, it is hidden.
      redact: { paths: ['authorization', 'headers', 'token', 'secret', 'password', 'credential', '*.authorization', '*.token', '*.secret', '*.password'], censor: '[redacted]' },
    },
    destination,
  );
}

/** The one log line per exchange: ids, names and numbers only. */
export function exchangeLogFields(exchange: Exchange, decision: Decision | undefined, outcome: ExchangeOutcome) {
  return {
    exchange: exchange.id,
    connection: exchange.connection,
    operation: redactPathCredentials(exchange.operation),
    subject: exchange.identity?.subject,
    kind: exchange.identity?.kind,
    client: exchange.client.address,
    model: exchange.facts.model,
    stream: exchange.facts.stream,
    decision: decision?.effect ?? 'deny',
    rules: decision?.rules,
    status: outcome.status,
    error: outcome.errorCode,
    detail: logDetail(outcome.errorDetail),
    complete: outcome.complete,
    bytesIn: outcome.bytesIn,
    bytesOut: outcome.bytesOut,
    ttfbMs: outcome.ttfbMs === undefined ? undefined : Math.round(outcome.ttfbMs * 100) / 100,
    durationMs: Math.round(outcome.durationMs * 100) / 100,
  };
}

/**
 * An error's detail as logged: cut at its first quote. Parsers quote the input they
 * stopped at (PostgreSQL: `unterminated quoted string at or near "'S3cret…"`, V8's
 * JSON.parse: `Unexpected token 's', "sk-proj-AB"...`), which is the caller's SQL or
 * body: kept in the exchange's record, never in a log line.
 */
export function logDetail(detail: string | undefined): string | undefined {
  if (detail === undefined) return undefined;
  const quote = detail.indexOf('"');
  return quote < 0 ? detail : `${detail.slice(0, quote)}…`;
}
