// Prometheus metrics on the admin listener's /metrics. Labels are bounded: connection
// names come from config, decisions and status codes from small fixed sets.

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision, Exchange, ExchangeOutcome } from '../exchange/index.js';

export interface GatewayMetrics {
  readonly registry: Registry;
  observeExchange(exchange: Exchange, decision: Decision | undefined, outcome: ExchangeOutcome): void;
  observeUnrouted(code: string): void;
}

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  const exchanges = new Counter({
    name: 'gatehouse_exchanges_total',
    help: 'Exchanges handled, by connection, decision and response status.',
    labelNames: ['connection', 'decision', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gatehouse_exchange_duration_seconds',
    help: 'Time from request received to the last byte of the answer, by connection.',
    labelNames: ['connection'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const ttfb = new Histogram({
    name: 'gatehouse_upstream_ttfb_seconds',
    help: 'Time from request received to the upstream answer headers, by connection.',
    labelNames: ['connection'] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const unrouted = new Counter({
    name: 'gatehouse_unrouted_requests_total',
    help: 'Data-plane requests that named no configured connection.',
    labelNames: ['code'] as const,
    registers: [registry],
  });

  return {
    registry,
    observeExchange(exchange, decision, outcome) {
      exchanges.inc({ connection: exchange.connection, decision: decision?.effect ?? 'deny', status: String(outcome.status ?? 0) });
      duration.observe({ connection: exchange.connection }, outcome.durationMs / 1000);
      if (outcome.ttfbMs !== undefined) ttfb.observe({ connection: exchange.connection }, outcome.ttfbMs / 1000);
    },
    observeUnrouted(code) {
      unrouted.inc({ code });
    },
  };
}
