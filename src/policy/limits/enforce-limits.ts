// Stage: limits. Runs after authorize, before anything is recorded as forwarded.
// Enforces, for each limit whose `match` holds, per identity / group / connection:
// - maxRequestBytes: a larger body is refused (413 request_too_large, the limit named);
// - requests, embeddingInputs, bytes per window: all counters are checked and added in
//   one atomic step; the first one over its limit refuses with 429 rate_limited and
//   Retry-After (seconds to the end of its window); a refused request counts nothing;
// - tokens per window: refused once the window's recorded usage reached the limit;
//   the answer's usage (total tokens) is added when the exchange ends, or, when the
//   answer reported none (a stream without include_usage), an estimate from its text;
// - concurrent: a slot per exchange, released when the exchange ends;
// - maxResponseBytes: returned as an obligation (the smallest applying cap).
// A store that does not answer refuses the request (503 limits_unavailable): fail closed.

import { randomUUID } from 'node:crypto';
import type { LimitRuleSpec } from '../../config/policy-schema.js';
import { GatehouseError } from '../../errors/index.js';
import type { Decision, Exchange, ExchangeOutcome } from '../../exchange/index.js';
import { compileMatch, type Criterion } from '../compile-criteria.js';
import { EvalContext } from '../eval-context.js';
import type { CounterRequest, LimitStore } from './limit-store.js';

export interface Admission {
  /** Response cap from the limits that applied, if any. */
  readonly maxResponseBytes: number | undefined;
  /** release() adds the answer's token usage (a token limit applied): the usage must be read. */
  readonly readsUsage?: boolean | undefined;
  /** Releases concurrency slots and adds token usage. Never throws. */
  release(outcome: ExchangeOutcome | undefined): Promise<void>;
}

export interface Limiter {
  admit(exchange: Exchange): Promise<Admission>;
}

interface CompiledLimit {
  readonly spec: LimitRuleSpec;
  readonly match: readonly Criterion[];
  readonly groupMatch: ((group: string) => boolean) | undefined;
}

const noop: Admission = { maxResponseBytes: undefined, release: async () => undefined };
/** How long a concurrency slot is held at most: one never given back (its process died) is freed then. */
const slotTtlMs = 15 * 60_000;

export function createLimiter(specs: readonly LimitRuleSpec[], store: LimitStore, timezone = 'UTC', onStoreError?: (error: unknown) => void): Limiter {
  const limits: CompiledLimit[] = specs.map((spec) => {
    const groups = spec.match?.groups;
    const groupCriterion = groups ? compileMatch({ groups }, timezone)[0] : undefined;
    return {
      spec,
      match: compileMatch(spec.match, timezone),
      groupMatch: groupCriterion ? (g: string) => groupCriterion.test(new EvalContext(groupProbe(g), undefined)) : undefined,
    };
  });

  return {
    async admit(exchange) {
      if (limits.length === 0) return noop;
      const ctx = new EvalContext(exchange, undefined);
      const counters: CounterRequest[] = [];
      const owners: Array<{ limit: LimitRuleSpec; what: string }> = [];
      const slots: Array<{ key: string; max: number; limit: LimitRuleSpec }> = [];
      const tokenKeys: Array<{ key: string; windowMs: number }> = [];
      let maxResponseBytes: number | undefined;
      const bytes = exchange.facts.bytes ?? 0;

      for (const { spec, match, groupMatch } of limits) {
        if (!match.every((c) => c.test(ctx))) continue;
        const scopes = scopesOf(spec, exchange, groupMatch);
        if (scopes.length === 0) continue;
        if (spec.maxRequestBytes !== undefined && bytes > spec.maxRequestBytes) {
          throw new GatehouseError('request_too_large', { rule: spec.name, message: spec.message ?? `The request body exceeds ${spec.maxRequestBytes} bytes (limit "${spec.name}").` });
        }
        if (spec.maxResponseBytes !== undefined) maxResponseBytes = Math.min(maxResponseBytes ?? Infinity, spec.maxResponseBytes);
        for (const scope of scopes) {
          const base = `limit:${spec.name}:${scope}`;
          const add = (what: string, amount: number, check: number, limit: number | undefined) => {
            if (limit === undefined) return;
            // More than a whole window allows: no retry can pass, so not a 429 (which
            // clients retry, the OpenAI SDKs on their own) but a request to send less.
            if (amount > limit) throw oversized(spec, what, amount, limit);
            counters.push({ key: `${base}:${what}`, windowMs: spec.window, amount, check, limit });
            owners.push({ limit: spec, what });
          };
          add('requests', 1, 1, spec.requests);
          if (exchange.facts.inputCount !== undefined) add('embedding-inputs', exchange.facts.inputCount, exchange.facts.inputCount, spec.embeddingInputs);
          add('bytes', bytes, bytes, spec.bytes);
          add('tokens', 0, 1, spec.tokens);
          if (spec.tokens !== undefined) tokenKeys.push({ key: `${base}:tokens`, windowMs: spec.window });
          if (spec.concurrent !== undefined) slots.push({ key: `${base}:concurrent`, max: spec.concurrent, limit: spec });
        }
      }

      const held: string[] = [];
      // Names this admission's slots, so giving one back frees that one, never another's.
      const slotId = slots.length > 0 ? randomUUID() : '';
      const releaseSlots = async () => {
        for (const key of held.splice(0)) await store.release(key, slotId).catch(onStoreError);
      };
      try {
        for (const slot of slots) {
          if (!(await store.acquire(slot.key, slotId, slot.max, slotTtlMs))) {
            await releaseSlots();
            throw refusal(slot.limit, 'concurrent', 1_000);
          }
          held.push(slot.key);
        }
        const refused = await store.take(counters);
        if (refused) {
          await releaseSlots();
          const owner = owners[refused.index]!;
          throw refusal(owner.limit, owner.what, refused.retryAfterMs);
        }
      } catch (error) {
        if (error instanceof GatehouseError) throw error;
        await releaseSlots();
        onStoreError?.(error);
        throw new GatehouseError('limits_unavailable', { detail: `limit store: ${(error as Error).message}`, cause: error });
      }

      if (held.length === 0 && tokenKeys.length === 0 && maxResponseBytes === undefined) return noop;
      return {
        maxResponseBytes,
        readsUsage: tokenKeys.length > 0,
        async release(outcome) {
          await releaseSlots();
          const tokens = outcome ? (outcome.usage?.totalTokens ?? estimatedTokens(exchange, outcome)) : 0;
          for (const { key, windowMs } of tokenKeys) await store.add(key, windowMs, tokens).catch(onStoreError);
        },
      };
    },
  };
}

/**
 * Tokens of an answer that reported no usage: a stream without `stream_options:
 * {include_usage: true}` (most clients send none), or one the client cut before the
 * usage came. Counting nothing would let a token limit be walked around; this counts
 * the prompt and the answer text relayed at about 4 characters a token, the usual
 * rule of thumb for English on OpenAI's tokenizers.
 */
export function estimatedTokens(exchange: Exchange, outcome: ExchangeOutcome): number {
  const characters = (exchange.facts.text?.length ?? 0) + (outcome.responseText?.length ?? 0);
  return Math.ceil(characters / 4);
}

function scopesOf(spec: LimitRuleSpec, exchange: Exchange, groupMatch: ((g: string) => boolean) | undefined): string[] {
  switch (spec.per) {
    case 'identity':
      return exchange.identity ? [`identity:${exchange.identity.subject}`] : [];
    case 'group':
      return (exchange.identity?.groups ?? []).filter((g) => groupMatch === undefined || groupMatch(g)).map((g) => `group:${g}`);
    case 'connection':
      return [`connection:${exchange.connection}`];
  }
}

const describe: Record<string, string> = {
  requests: 'requests',
  'embedding-inputs': 'embedding inputs',
  bytes: 'request bytes',
  tokens: 'tokens',
  concurrent: 'concurrent requests',
};

function refusal(limit: LimitRuleSpec, what: string, retryAfterMs: number): GatehouseError {
  const retryAfterSeconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  const per = what === 'concurrent' ? '' : ` per ${formatWindow(limit.window)}`;
  return new GatehouseError('rate_limited', {
    rule: limit.name,
    message: limit.message ?? `Rate limit "${limit.name}" reached: too many ${describe[what] ?? what}${per}. Retry after ${retryAfterSeconds} s.`,
    detail: `limit ${limit.name}: ${what}`,
    retryAfterSeconds,
  });
}

function oversized(limit: LimitRuleSpec, what: string, amount: number, max: number): GatehouseError {
  return new GatehouseError('request_too_large', {
    rule: limit.name,
    message: `The request has ${amount} ${describe[what] ?? what}, more than limit "${limit.name}" allows per ${formatWindow(limit.window)} (${max}), so it cannot pass: send less at a time.`,
    detail: `limit ${limit.name}: ${what} ${amount} > ${max}`,
  });
}

function formatWindow(ms: number): string {
  if (ms % 86_400_000 === 0) return ms === 86_400_000 ? 'day' : `${ms / 86_400_000} days`;
  if (ms % 3_600_000 === 0) return ms === 3_600_000 ? 'hour' : `${ms / 3_600_000} hours`;
  if (ms % 60_000 === 0) return ms === 60_000 ? 'minute' : `${ms / 60_000} minutes`;
  return `${ms / 1000} s`;
}

function groupProbe(group: string): Exchange {
  return { id: '', sessionId: '', protocol: 'http', connection: '', operation: '', startedAt: 0, client: { address: undefined }, facts: { stream: false }, identity: { subject: '', kind: 'service', groups: [group], method: 'api_key', credentialId: '' } };
}

/** The decision with the limits' response cap folded into its obligations (the smaller cap wins). */
export function withLimitObligations(decision: Decision, admission: Admission | undefined): Decision {
  const cap = admission?.maxResponseBytes;
  if (cap === undefined) return decision;
  const current = decision.obligations?.maxResponseBytes;
  return { ...decision, obligations: { ...decision.obligations, maxResponseBytes: current === undefined ? cap : Math.min(current, cap) } };
}
