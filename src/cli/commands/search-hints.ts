// A search that found nothing because a filter names a value no exchange (or review)
// has (a typo: `--operation chat.completion`) says so on stderr, with the nearest names
// recorded or configured (connections in the config, rules in its policy); a configured
// name that no record holds yet is said to be one: stdout (a table, --json, an export's
// line) stays what it was.

import type { Kysely } from 'kysely';
import { unmatchedFilters, unmatchedReviewFilters, type ExchangeFilter, type UnmatchedFilter } from '../../audit/index.js';
import type { GatehouseConfig } from '../../config/index.js';
import { PolicyError, policyRuleNames, policySourceOf } from '../../policy/index.js';
import type { Database } from '../../store/index.js';
import { oneLine } from '../terminal-text.js';

/** For an empty answer: one stderr line per filter whose value no exchange has. */
export async function hintUnmatchedFilters(db: Kysely<Database>, filter: ExchangeFilter, config: GatehouseConfig): Promise<void> {
  const rules = filter.rule === undefined ? undefined : configuredRuleNames(config);
  const unmatched = await unmatchedFilters(db, filter, { connections: config.connections.map((c) => c.name), rules });
  for (const u of unmatched) process.stderr.write(`gatehouse: ${oneLine(hintLine(u, 'exchange'))}\n`);
}

/** The same for an empty `reviews list`: its --connection and --subject. */
export async function hintUnmatchedReviewFilters(db: Kysely<Database>, filter: { connection?: string | undefined; subject?: string | undefined }, config: GatehouseConfig): Promise<void> {
  const unmatched = await unmatchedReviewFilters(db, filter, { connections: config.connections.map((c) => c.name) });
  for (const u of unmatched) process.stderr.write(`gatehouse: ${oneLine(hintLine(u, 'review'))}\n`);
}

/**
 * The rule names of the config's policy (its files and packs read), as the gateway would
 * compile it; a policy that cannot be read gives the config's own rules (a hint must not fail).
 */
function configuredRuleNames(config: GatehouseConfig): string[] {
  try {
    return policyRuleNames(policySourceOf(config, { checkApprovals: false }));
  } catch (error) {
    if (!(error instanceof PolicyError)) throw error;
    return policyRuleNames({ access: config.connections.map((c) => ({ connection: c.name, groups: c.access.groups })), rules: config.policy.rules, limits: config.policy.limits.rules });
  }
}

function hintLine({ filter, value, nearest, configured }: UnmatchedFilter, what: 'exchange' | 'review'): string {
  const has = `no ${what} has --${filter} ${JSON.stringify(value)}`;
  if (configured) {
    return filter === 'rule'
      ? `${has} yet: the policy has a rule of that name, but no recorded decision names it`
      : `${has} yet: it is a configured connection, but no ${what} on it is recorded`;
  }
  const why =
    filter === 'operation'
      ? `, which is not an operation's name (chat.completions, completions, embeddings, responses, http.<METHOD> <path>, sql.<class>)`
      : filter === 'connection'
        ? ', and no configured connection has that name'
        : filter === 'rule'
          ? ', and the policy has no rule of that name'
          : '';
  const names = filter === 'connection' ? 'connections configured or recorded' : filter === 'rule' ? 'rules in the policy or recorded' : `recorded ${filter}s`;
  const near = nearest.length === 0 ? `; no ${filter === 'connection' ? 'connection is configured or' : `${what} is`} recorded yet` : `; ${names}, closest first: ${nearest.join(', ')}`;
  return `${has}${why}${near}`;
}
