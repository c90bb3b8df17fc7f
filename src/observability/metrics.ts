// Prometheus metrics on the admin listener's /metrics. Labels are bounded: connection
// names come from config, decisions and status codes from small fixed sets.
//
// Every exchange (every SQL statement) is observed, so observing must cost next to
// nothing: prom-client validates and hashes the label object on every call (≈ 1–2 µs
// for the three metrics below). Counts are kept in plain per-label-set cells instead,
// and handed to prom-client when /metrics is read (the exchange counter's `collect`),
// or written out by a histogram of our own (per-connection-histogram.ts). The text on
// /metrics is the same.

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision, Exchange, ExchangeOutcome } from '../exchange/index.js';
import { PerConnectionHistogram } from './per-connection-histogram.js';

export interface GatewayMetrics {
  readonly registry: Registry;
  observeExchange(exchange: Exchange, decision: Decision | undefined, outcome: ExchangeOutcome): void;
  observeUnrouted(code: string): void;
}

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Exchanges counted since the last collect, for one label set. */
interface CountCell {
  readonly labels: { connection: string; decision: string; status: string };
  pending: number;
}

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  // connection → decision → status → cell: no key string is built per exchange.
  const counts = new Map<string, Map<string, Map<number, CountCell>>>();
  const exchanges = new Counter({
    name: 'gatehouse_exchanges_total',
    help: 'Exchanges handled, by connection, decision and response status.',
    labelNames: ['connection', 'decision', 'status'] as const,
    registers: [registry],
    collect() {
      for (const byDecision of counts.values())
        for (const byStatus of byDecision.values())
          for (const cell of byStatus.values()) {
            if (cell.pending === 0) continue;
            this.inc(cell.labels, cell.pending);
            cell.pending = 0;
          }
    },
  });
  void exchanges;
  const duration = new PerConnectionHistogram('gatehouse_exchange_duration_seconds', 'Time from request received to the last byte of the answer, by connection.', latencyBuckets);
  const ttfb = new PerConnectionHistogram('gatehouse_upstream_ttfb_seconds', 'Time from request received to the upstream answer headers, by connection.', latencyBuckets);
  registry.registerMetric(duration as unknown as Histogram);
  registry.registerMetric(ttfb as unknown as Histogram);
  const unrouted = new Counter({
    name: 'gatehouse_unrouted_requests_total',
    help: 'Data-plane requests that named no configured connection.',
    labelNames: ['code'] as const,
    registers: [registry],
  });

  const countCell = (connection: string, decision: string, status: number): CountCell => {
    let byDecision = counts.get(connection);
    if (!byDecision) counts.set(connection, (byDecision = new Map()));
    let byStatus = byDecision.get(decision);
    if (!byStatus) byDecision.set(decision, (byStatus = new Map()));
    let cell = byStatus.get(status);
    if (!cell) byStatus.set(status, (cell = { labels: { connection, decision, status: String(status) }, pending: 0 }));
    return cell;
  };

  return {
    registry,
    observeExchange(exchange, decision, outcome) {
      countCell(exchange.connection, decision?.effect ?? 'deny', outcome.status ?? 0).pending++;
      duration.observe(exchange.connection, outcome.durationMs / 1000);
      if (outcome.ttfbMs !== undefined) ttfb.observe(exchange.connection, outcome.ttfbMs / 1000);
    },
    observeUnrouted(code) {
      unrouted.inc({ code });
    },
  };
}
