// Builders for exchanges and rules used across the policy tests.
import type { Exchange, Identity, IdentityKind, RequestFacts } from '../../src/exchange/index.js';
import { ruleSchema, type PolicyRuleSpec } from '../../src/config/policy-schema.js';

export function who(subject: string, groups: readonly string[], kind: IdentityKind = 'service'): Identity {
  return { subject, kind, groups, method: 'api_key', credentialId: `cred-${subject}` };
}

export function exchangeOf(options: { connection?: string; operation?: string; identity?: Identity | undefined; facts?: Partial<RequestFacts> & Record<string, unknown>; startedAt?: number } = {}): Exchange {
  return {
    id: 'ex_1',
    sessionId: 'ex_1',
    protocol: 'http',
    connection: options.connection ?? 'openai',
    operation: options.operation ?? 'chat.completions',
    startedAt: options.startedAt ?? Date.UTC(2026, 0, 7, 10, 0), // a Wednesday, 10:00 UTC
    client: { address: '127.0.0.1' },
    facts: { stream: false, ...options.facts } as RequestFacts,
    identity: 'identity' in options ? options.identity : who('key:alice', ['ml']),
  };
}

/** Parses a rule as the config would (defaults applied, regexes checked). */
export function rule(spec: Record<string, unknown>): PolicyRuleSpec {
  return ruleSchema.parse(spec);
}
