import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import type { Decision, Exchange, ExchangeOutcome } from '../../src/exchange/index.js';
import { createMetrics } from '../../src/observability/index.js';
import { PerConnectionHistogram } from '../../src/observability/per-connection-histogram.js';

const buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const values: Array<[string, number]> = [['db', 0.0004], ['db', 0.0005], ['db', 0.003], ['api', 7], ['api', 500], ['db', 0.07], ['api', 0]];

describe('PerConnectionHistogram', () => {
  test('/metrics text and JSON are what a prom-client Histogram gives for the same observations', async () => {
    const reference = new Registry();
    const ours = new Registry();
    const histogram = new Histogram({ name: 'h_seconds', help: 'Help.', labelNames: ['connection'], buckets, registers: [reference] });
    const fast = new PerConnectionHistogram('h_seconds', 'Help.', buckets);
    ours.registerMetric(fast as unknown as Histogram);
    for (const [connection, value] of values) {
      histogram.observe({ connection }, value);
      fast.observe(connection, value);
    }
    assert.equal(await ours.metrics(), await reference.metrics());
    // prom-client adds an empty `exemplar` to each sample; ours has none.
    const withoutExemplars = (json: Awaited<ReturnType<Registry['getMetricsAsJSON']>>) =>
      json.map((m) => ({ ...m, values: m.values.map((v) => { const { exemplar: _, ...rest } = v as typeof v & { exemplar?: unknown }; return rest; }) }));
    assert.deepEqual(await ours.getMetricsAsJSON(), withoutExemplars(await reference.getMetricsAsJSON()));
    ours.resetMetrics();
    reference.resetMetrics();
    assert.equal(await ours.metrics(), await reference.metrics());
  });
});

describe('createMetrics', () => {
  const exchange = { connection: 'db' } as Exchange;
  const allow = { effect: 'allow' } as Decision;
  const outcome = (status: number, durationMs: number, ttfbMs?: number) => ({ status, durationMs, ttfbMs }) as ExchangeOutcome;

  test('counts exchanges by connection, decision and status; durations and ttfb by connection', async () => {
    const metrics = createMetrics();
    metrics.observeExchange(exchange, allow, outcome(200, 2, 1));
    metrics.observeExchange(exchange, allow, outcome(200, 3));
    metrics.observeExchange(exchange, undefined, outcome(401, 0.1));
    let text = await metrics.registry.metrics();
    assert.match(text, /^gatehouse_exchanges_total\{connection="db",decision="allow",status="200"\} 2$/m);
    assert.match(text, /^gatehouse_exchanges_total\{connection="db",decision="deny",status="401"\} 1$/m);
    assert.match(text, /^gatehouse_exchange_duration_seconds_bucket\{le="0.0025",connection="db"\} 2$/m);
    assert.match(text, /^gatehouse_exchange_duration_seconds_count\{connection="db"\} 3$/m);
    assert.match(text, /^gatehouse_upstream_ttfb_seconds_count\{connection="db"\} 1$/m);
    // Counted once: a second read adds nothing, a later exchange adds one.
    metrics.observeExchange(exchange, allow, outcome(200, 2));
    text = await metrics.registry.metrics();
    assert.match(text, /^gatehouse_exchanges_total\{connection="db",decision="allow",status="200"\} 3$/m);
    text = await metrics.registry.metrics();
    assert.match(text, /^gatehouse_exchanges_total\{connection="db",decision="allow",status="200"\} 3$/m);
  });

  test('the counter type is a real prom-client Counter', () => {
    const metrics = createMetrics();
    assert.ok(metrics.registry.getSingleMetric('gatehouse_exchanges_total') instanceof Counter);
  });
});
