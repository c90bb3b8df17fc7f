// Watches what a scaled-out gateway shares with the others and fails closed without:
// the store, and Redis when limits are kept there. Once a second each is asked (the
// same queries /readyz runs, bounded alike), so an operator sees an outage and its end
// without traffic or a probe: one `warn` line when a dependency stops answering, one
// `info` line when it answers again (with how long it was gone), and the gauge
// `gatehouse_dependency_up{dependency}` (1 or 0) on /metrics. Per-request failures are
// not logged one by one: under load that buried the lines saying what was wrong.
// Also exports `gatehouse_policy_info{version}`: gateways meant to share one config
// show one version, so a dashboard or alert sees one that differs.

import { Gauge, type Registry } from 'prom-client';
import { readinessTimeoutMs, withTimeout } from '../api/admin-server.js';
import type { Logger } from '../observability/index.js';

export type Dependency = 'store' | 'limits';

export interface DependencyMonitorOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** Each resolves when the dependency answers; absent: not used by this gateway (no series). */
  readonly checks: Readonly<Partial<Record<Dependency, () => Promise<unknown>>>>;
  /** The running policy's version, read at scrape time. */
  readonly policyVersion: () => string;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
}

export interface DependencyMonitor {
  close(): void;
}

const lines: Record<Dependency, { readonly down: string; readonly up: string }> = {
  store: { down: 'the store does not answer: requests are refused until it does', up: 'the store answers again' },
  limits: { down: 'Redis (limit counters) does not answer: requests a limit applies to are refused until it does', up: 'Redis (limit counters) answers again' },
};

export function startDependencyMonitor(options: DependencyMonitorOptions): DependencyMonitor {
  const { logger } = options;
  const intervalMs = options.intervalMs ?? 1_000;
  const timeoutMs = options.timeoutMs ?? readinessTimeoutMs;
  const entries = (Object.entries(options.checks) as [Dependency, () => Promise<unknown>][]).filter(([, check]) => check !== undefined);
  // Up until a check says otherwise: the gateway started, so each answered then.
  const state = new Map(entries.map(([name]) => [name, { up: true, since: Date.now() }]));
  new Gauge({
    name: 'gatehouse_dependency_up',
    help: 'Whether a dependency this gateway fails closed without answered its last check (each second): store, limits (Redis).',
    labelNames: ['dependency'] as const,
    registers: [options.registry],
    collect() {
      for (const [name, s] of state) this.set({ dependency: name }, s.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'gatehouse_policy_info',
    help: 'The running policy version (value 1): gateways sharing a config show the same one.',
    labelNames: ['version'] as const,
    registers: [options.registry],
    collect() {
      this.reset();
      this.set({ version: options.policyVersion() }, 1);
    },
  });

  let running = false;
  let closed = false;
  async function checkAll(): Promise<void> {
    if (running) return; // a check that hangs is bounded; never two rounds at once
    running = true;
    try {
      await Promise.all(
        entries.map(async ([name, check]) => {
          const result = await withTimeout(check(), timeoutMs).then(
            () => undefined,
            (error: unknown) => error as Error,
          );
          const s = state.get(name)!;
          if (closed) return;
          if (result && s.up) {
            state.set(name, { up: false, since: Date.now() });
            logger.warn({ dependency: name, err: result.message }, lines[name].down);
          } else if (!result && !s.up) {
            state.set(name, { up: true, since: Date.now() });
            logger.info({ dependency: name, downMs: Date.now() - s.since }, lines[name].up);
          }
        }),
      );
    } finally {
      running = false;
    }
  }
  const timer = setInterval(() => void checkAll(), intervalMs);
  timer.unref();
  return {
    close() {
      closed = true;
      clearInterval(timer);
      options.registry.removeSingleMetric('gatehouse_dependency_up');
      options.registry.removeSingleMetric('gatehouse_policy_info');
    },
  };
}

