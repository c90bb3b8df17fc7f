// Benchmark helper: a hand-written HTTP load generator on an undici keep-alive Pool.
// - closedLoop(): N workers, each sends its next request as soon as the previous one
//   has been read to the end; throughput = completions inside the measured window.
// - sequential(): one request at a time, per-request latency (and time to first body
//   byte) with process.hrtime.bigint().
// Every response must be 200 with a plausible body; anything else counts as an error.

import { Pool } from 'undici';

export interface Target {
  /** "direct" or "gateway". */
  readonly name: string;
  readonly pool: Pool;
  /** Request path on the pool's origin, e.g. `/v1/chat/completions`. */
  readonly path: string;
  readonly authorization: string;
  /** Gateway responses must carry `gatehouse-exchange-id`: proof they went through it. */
  readonly expectExchangeId: boolean;
}

export interface Scenario {
  readonly name: string;
  readonly body: string;
  readonly stream: boolean;
}

/** Error count, and up to 5 distinct messages with how often each occurred. */
export class ErrorLog {
  count = 0;
  readonly distinct = new Map<string, number>();
  add(message: string): void {
    this.count++;
    const seen = this.distinct.get(message);
    if (seen !== undefined) this.distinct.set(message, seen + 1);
    else if (this.distinct.size < 5) this.distinct.set(message, 1);
  }
  get samples(): string[] {
    return [...this.distinct].map(([message, n]) => (n > 1 ? `${message} (x${n})` : message));
  }
}

export interface ThroughputResult {
  readonly completed: number;
  readonly seconds: number;
  readonly rps: number;
  /** Latencies (ns) of the measured completions, under load. */
  readonly latenciesNs: number[];
  readonly errors: ErrorLog;
  /** Every request that was answered 200 and read to the end, warm-up included. */
  readonly okTotal: number;
}

export interface LatencyResult {
  readonly samples: number;
  readonly latenciesNs: number[];
  readonly ttfbNs: number[];
  readonly errors: ErrorLog;
  readonly okTotal: number;
}

interface One {
  readonly ok: boolean;
  readonly totalNs: number;
  readonly ttfbNs: number;
}

const DONE_TAIL = 'data: [DONE]\n\n';

export function createPool(origin: string, connections: number): Pool {
  return new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 60_000 });
}

function checkResponse(target: Target, scenario: Scenario, status: number, contentType: string | string[] | undefined, hasExchangeId: boolean, bytes: number, first: Buffer | undefined, tail: string): string | undefined {
  if (status !== 200) return `status ${status}: ${first?.toString('utf8').slice(0, 300) ?? ''}`;
  const type = String(contentType ?? '');
  if (scenario.stream) {
    if (!type.startsWith('text/event-stream')) return `content-type "${type}", expected text/event-stream`;
    if (tail !== DONE_TAIL) return `stream did not end with "data: [DONE]" (${bytes} bytes)`;
  } else {
    if (!type.startsWith('application/json')) return `content-type "${type}", expected application/json`;
    if (bytes === 0) return 'empty body';
  }
  if (target.expectExchangeId && !hasExchangeId) return 'no gatehouse-exchange-id header (did it go through the gateway?)';
  return undefined;
}

async function once(target: Target, scenario: Scenario, errors: ErrorLog): Promise<One> {
  const t0 = process.hrtime.bigint();
  let ttfb = -1n;
  try {
    const { statusCode, headers, body } = await target.pool.request({
      method: 'POST',
      path: target.path,
      headers: { 'content-type': 'application/json', authorization: target.authorization },
      body: scenario.body,
    });
    let bytes = 0;
    let first: Buffer | undefined;
    let tail = '';
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (ttfb < 0n) {
        ttfb = process.hrtime.bigint() - t0;
        first = chunk;
      }
      bytes += chunk.length;
      if (scenario.stream) tail = (tail + chunk.toString('latin1')).slice(-DONE_TAIL.length);
    }
    const total = process.hrtime.bigint() - t0;
    if (ttfb < 0n) ttfb = total;
    const failure = checkResponse(target, scenario, statusCode, headers['content-type'], headers['gatehouse-exchange-id'] !== undefined, bytes, first, tail);
    if (failure !== undefined) {
      errors.add(`${target.name} ${scenario.name}: ${failure}`);
      return { ok: false, totalNs: Number(total), ttfbNs: Number(ttfb) };
    }
    return { ok: true, totalNs: Number(total), ttfbNs: Number(ttfb) };
  } catch (error) {
    const total = Number(process.hrtime.bigint() - t0);
    errors.add(`${target.name} ${scenario.name}: ${(error as Error).name}: ${(error as Error).message}`);
    return { ok: false, totalNs: total, ttfbNs: total };
  }
}

/**
 * Fixed-concurrency closed loop: `concurrency` workers run back to back for
 * warm-up + duration. Only completions that finish inside the measured window
 * (after the warm-up, before the end) are counted; errors are counted throughout.
 */
export async function closedLoop(target: Target, scenario: Scenario, opts: { concurrency: number; warmupMs: number; durationMs: number; signal: AbortSignal; errors?: ErrorLog }): Promise<ThroughputResult> {
  const errors = opts.errors ?? new ErrorLog();
  const latenciesNs: number[] = [];
  const start = process.hrtime.bigint();
  const measureFrom = start + BigInt(Math.round(opts.warmupMs * 1e6));
  const end = measureFrom + BigInt(Math.round(opts.durationMs * 1e6));
  let completed = 0;
  let okTotal = 0;

  async function worker(): Promise<void> {
    while (!opts.signal.aborted && process.hrtime.bigint() < end) {
      const r = await once(target, scenario, errors);
      if (!r.ok) continue;
      okTotal++;
      const now = process.hrtime.bigint();
      if (now >= measureFrom && now <= end) {
        completed++;
        latenciesNs.push(r.totalNs);
      }
    }
  }

  await Promise.all(Array.from({ length: opts.concurrency }, () => worker()));
  const seconds = opts.durationMs / 1000;
  return { completed, seconds, rps: completed / seconds, latenciesNs, errors, okTotal };
}

/** One request at a time: warm-up, then latency samples until `durationMs` or `maxSamples`. */
export async function sequential(target: Target, scenario: Scenario, opts: { warmupMs: number; durationMs: number; maxSamples: number; signal: AbortSignal; errors?: ErrorLog }): Promise<LatencyResult> {
  const errors = opts.errors ?? new ErrorLog();
  const latenciesNs: number[] = [];
  const ttfbNs: number[] = [];
  let okTotal = 0;
  const warmEnd = process.hrtime.bigint() + BigInt(Math.round(opts.warmupMs * 1e6));
  while (!opts.signal.aborted && process.hrtime.bigint() < warmEnd) {
    if ((await once(target, scenario, errors)).ok) okTotal++;
  }
  const end = process.hrtime.bigint() + BigInt(Math.round(opts.durationMs * 1e6));
  while (!opts.signal.aborted && latenciesNs.length < opts.maxSamples && process.hrtime.bigint() < end) {
    const r = await once(target, scenario, errors);
    if (!r.ok) continue;
    okTotal++;
    latenciesNs.push(r.totalNs);
    ttfbNs.push(r.ttfbNs);
  }
  return { samples: latenciesNs.length, latenciesNs, ttfbNs, errors, okTotal };
}

/** Nearest-rank percentile of unsorted samples (sorts a copy). NaN when empty. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = Float64Array.from(samples).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}
