// Compiles the access part of config into a decision function, once at start.
// Enforces:
// - default deny: an exchange no rule allows is denied by `default-deny`;
// - connection access by group: rule `connection-access:<connection>` allows an
//   identity holding any of the connection's `access.groups`;
// - deny beats approval beats allow, when several rules match (see combineEffects).
// The full rule engine (match / conditions / obligations) plugs in as more rules.

import { createHash } from 'node:crypto';
import type { Decision, Effect, Exchange } from '../exchange/index.js';

export interface AccessRuleSource {
  readonly connection: string;
  readonly groups: readonly string[];
}

interface CompiledRule {
  readonly name: string;
  readonly connection: string;
  readonly effect: Effect;
  matches(exchange: Exchange): boolean;
}

export interface Policy {
  /** A hash of the compiled rules, recorded with every decision. */
  readonly version: string;
  decide(exchange: Exchange): Decision;
}

const effectRank: Record<Effect, number> = { allow: 1, require_approval: 2, deny: 3 };

export function compilePolicy(access: readonly AccessRuleSource[]): Policy {
  const rules: CompiledRule[] = access.map(({ connection, groups }) => {
    const allowed = new Set(groups);
    return {
      name: `connection-access:${connection}`,
      connection,
      effect: 'allow',
      matches: (ex) => ex.connection === connection && ex.identity !== undefined && ex.identity.groups.some((g) => allowed.has(g)),
    };
  });
  const version = createHash('sha256').update(JSON.stringify(access)).digest('hex').slice(0, 16);
  const byConnection = new Map<string, CompiledRule[]>();
  for (const rule of rules) {
    byConnection.set(rule.connection, [...(byConnection.get(rule.connection) ?? []), rule]);
  }

  return {
    version,
    decide(exchange) {
      const matched = (byConnection.get(exchange.connection) ?? []).filter((r) => r.matches(exchange));
      if (matched.length === 0) {
        const who = exchange.identity?.subject ?? 'anonymous caller';
        return {
          effect: 'deny',
          rules: ['default-deny'],
          reason: 'no-rule-allows',
          message: `Access denied: no rule allows ${who} on connection "${exchange.connection}".`,
          policyVersion: version,
        };
      }
      const effect = combineEffects(matched.map((r) => r.effect));
      return { effect, rules: matched.filter((r) => r.effect === effect).map((r) => r.name), reason: `rule-${effect.replace('_', '-')}`, policyVersion: version };
    },
  };
}

/** Deny beats approval beats allow; nothing matched is a deny (fail closed). */
export function combineEffects(effects: readonly Effect[]): Effect {
  if (effects.length === 0) return 'deny';
  let best: Effect = effects[0]!;
  for (const effect of effects) if (effectRank[effect] > effectRank[best]) best = effect;
  return best;
}
