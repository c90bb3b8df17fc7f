// Prometheus metrics on the admin listener's /metrics. Labels are bounded: connection
// names come from config, decisions and status codes from small fixed sets.
//
// Every exchange updates three series, so the update is kept off prom-client's label
// machinery (a label string built and validated per call, bucket bounds looked up as
// strings): counts live in plain nested maps and typed arrays, and prom-client reads
// them at scrape time — the counter through its `collect` hook, the histograms through
// a subclass that exports the series it keeps. The exposition is prom-client's own.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision, Exchange, ExchangeOutcome } from '../exchange/index.js';
import { targetCredentialEntity } from '../mask/index.js';

export interface GatewayMetrics {
  readonly registry: Registry;
  observeExchange(exchange: Exchange, decision: Decision | undefined, outcome: ExchangeOutcome): void;
  observeUnrouted(code: string): void;
  /** A connection an HTTP listener turned away (server/connection-limits.ts). */
  observeRefusedConnection(listener: 'data' | 'admin', reason: 'listener' | 'client'): void;
  /** An attempt refused unchecked by failed-authentication throttling (identity/auth-throttle.ts). */
  observeThrottledAttempt(listener: string): void;
  /** Reports a listener's open connections at scrape time. */
  trackConnections(listener: 'data' | 'admin', open: () => number): void;
}

const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

export function createMetrics(): GatewayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'gatehouse_process_' });
  // connection → decision → status → count
  const exchangeCounts = new Map<string, Map<string, Map<number, { value: number }>>>();
  new Counter({
    name: 'gatehouse_exchanges_total',
    help: 'Exchanges handled, by connection, decision and response status.',
    labelNames: ['connection', 'decision', 'status'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [connection, byDecision] of exchangeCounts) {
        for (const [decision, byStatus] of byDecision) {
          for (const [status, count] of byStatus) this.inc({ connection, decision, status: String(status) }, count.value);
        }
      }
    },
  });
  const duration = new ConnectionHistogram({
    name: 'gatehouse_exchange_duration_seconds',
    help: 'Time from request received to the last byte of the answer, by connection.',
    buckets: latencyBuckets,
    registers: [registry],
  });
  const ttfb = new ConnectionHistogram({
    name: 'gatehouse_upstream_ttfb_seconds',
    help: 'Time from request received to the upstream answer headers, by connection.',
    buckets: latencyBuckets,
    registers: [registry],
  });
  // An answer that carried the target's own credential back (scrubbed: credential-echo.ts).
  const credentialScrubs = new Counter({
    name: 'gatehouse_target_credential_scrubs_total',
    help: "Occurrences of a connection's target credential found in the target's answers and replaced, by connection.",
    labelNames: ['connection'] as const,
    registers: [registry],
  });
  const unrouted = new Counter({
    name: 'gatehouse_unrouted_requests_total',
    help: 'Data-plane requests that named no configured connection.',
    labelNames: ['code'] as const,
    registers: [registry],
  });

  const refusedConnections = new Counter({
    name: 'gatehouse_http_connections_refused_total',
    help: 'TCP connections an HTTP listener refused, by listener (data, admin) and reason (listener: maxConnections; client: maxConnectionsPerClient).',
    labelNames: ['listener', 'reason'] as const,
    registers: [registry],
  });
  const throttledAttempts = new Counter({
    name: 'gatehouse_auth_throttled_total',
    help: 'Authentication attempts refused without being checked (429 auth_throttled) because their address or API key id had too many failures, by listener (data, admin, postgres, agents).',
    labelNames: ['listener'] as const,
    registers: [registry],
  });
  const openCounts = new Map<string, () => number>();
  new Gauge({
    name: 'gatehouse_http_connections',
    help: 'TCP connections open on an HTTP listener, by listener (data, admin).',
    labelNames: ['listener'] as const,
    registers: [registry],
    collect() {
      for (const [listener, open] of openCounts) this.set({ listener }, open());
    },
  });

  return {
    registry,
    observeExchange(exchange, decision, outcome) {
      const connection = exchange.connection;
      const effect = decision?.effect ?? 'deny';
      const status = outcome.status ?? 0;
      let byDecision = exchangeCounts.get(connection);
      if (!byDecision) exchangeCounts.set(connection, (byDecision = new Map()));
      let byStatus = byDecision.get(effect);
      if (!byStatus) byDecision.set(effect, (byStatus = new Map()));
      const count = byStatus.get(status);
      if (count) count.value++;
      else byStatus.set(status, { value: 1 });
      duration.record(connection, outcome.durationMs / 1000);
      if (outcome.ttfbMs !== undefined) ttfb.record(connection, outcome.ttfbMs / 1000);
      const scrubbed = outcome.maskCounts?.[targetCredentialEntity];
      if (scrubbed) credentialScrubs.inc({ connection }, scrubbed);
    },
    observeUnrouted(code) {
      unrouted.inc({ code });
    },
    observeRefusedConnection(listener, reason) {
      refusedConnections.inc({ listener, reason });
    },
    observeThrottledAttempt(listener) {
      throttledAttempts.inc({ listener });
    },
    trackConnections(listener, open) {
      openCounts.set(listener, open);
    },
  };
}

interface Series {
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

type Exported = { labels: Record<string, string | number>; value: number; metricName: string; sharedLabels?: Record<string, string> };

/**
 * A histogram with one label, `connection`: `record` allocates nothing once a connection
 * has its series. It has what prom-client's Registry reads of a metric (name, help,
 * type, aggregator, get, getForPromString, reset) and exports exactly what a
 * prom-client Histogram would.
 */
class ConnectionHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: readonly number[];
  readonly #series = new Map<string, Series>();

  constructor(config: { name: string; help: string; buckets: readonly number[]; registers: Registry[] }) {
    this.name = config.name;
    this.help = config.help;
    this.#bounds = config.buckets;
    // Not one of prom-client's classes, but the same contract as far as a Registry goes.
    for (const registry of config.registers) registry.registerMetric(this as unknown as Histogram);
  }

  record(connection: string, value: number): void {
    if (!Number.isFinite(value)) return;
    let series = this.#series.get(connection);
    if (!series) this.#series.set(connection, (series = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }));
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += value;
    series.count++;
  }

  reset(): void {
    this.#series.clear();
  }

  /** Buckets (cumulative, `le` first), +Inf, sum and count per connection, as prom-client lays them out. */
  #values(splay: boolean): Exported[] {
    const values: Exported[] = [];
    const bucket = `${this.name}_bucket`;
    for (const [connection, series] of this.#series) {
      const shared = { connection };
      const labelled = (labels: Record<string, string | number>, value: number, metricName: string): Exported =>
        splay ? { labels: { ...labels, connection }, value, metricName } : { labels, sharedLabels: shared, value, metricName };
      let cumulative = 0;
      this.#bounds.forEach((le, i) => {
        cumulative += series.counts[i]!;
        values.push(labelled({ le }, cumulative, bucket));
      });
      values.push(labelled({ le: '+Inf' }, series.count, bucket));
      values.push(labelled({}, series.sum, `${this.name}_sum`));
      values.push(labelled({}, series.count, `${this.name}_count`));
    }
    return values;
  }

  // The registry reads `getForPromString` for the text format and `get` for JSON.
  async getForPromString() {
    return { name: this.name, help: this.help, type: this.type, values: this.#values(false), aggregator: this.aggregator };
  }

  async get() {
    return { name: this.name, help: this.help, type: this.type, values: this.#values(true), aggregator: this.aggregator };
  }
}
