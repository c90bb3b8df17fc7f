// Why a search of the recorded exchanges found nothing, when the reason is a filter
// naming a value no exchange has: a misspelt operation (`chat.completion`), connection,
// subject (`ci-bot` for `key:ci-bot`), group or rule answers an empty list that reads
// as "nothing happened". Each such filter comes back with the names nearest to it,
// recorded or configured (connections in the config, rules in the current policy), for a
// hint beside the answer; the answer itself is unchanged. A connection or rule that is
// configured but in no record yet (a deny rule that never fired) comes back marked
// `configured`, without names: it is not a typo.

import type { Kysely } from 'kysely';
import { isOperationName } from '../config/index.js';
import type { Database } from '../store/index.js';
import { closestNames } from './closest-names.js';
import { applyFilter, type ExchangeFilter } from './exchange-query.js';

export interface UnmatchedFilter {
  readonly filter: 'operation' | 'connection' | 'subject' | 'group' | 'rule';
  readonly value: string;
  /** Recorded or configured names, closest first; empty when there is none, or the value is `configured`. */
  readonly nearest: readonly string[];
  /** Set (true) when the value is a configured connection or a rule of the current policy that no record names yet. */
  readonly configured?: true;
}

/** What the config and the current policy name, beside what is recorded. */
export interface ConfiguredNames {
  readonly connections: readonly string[];
  /** The current policy's rule names (Policy.ruleNames); left out, only recorded rules are known. */
  readonly rules?: readonly string[] | undefined;
}

/** Distinct values read as candidates, at most (operations hold paths: there can be many). */
const maxCandidates = 5000;

/**
 * The filters of `filter` whose value no exchange has (an operation also not of an
 * operation's shape; a connection also not configured). Call it for an empty answer only:
 * reading the candidates scans the exchanges.
 */
export async function unmatchedFilters(db: Kysely<Database>, filter: ExchangeFilter, configured: ConfiguredNames): Promise<UnmatchedFilter[]> {
  const unmatched: UnmatchedFilter[] = [];
  const check = async (name: UnmatchedFilter['filter'], value: string | undefined, known: readonly string[] = []) => {
    if (!value) return;
    // The search's own matching, this filter alone: does any exchange have the value?
    if ((await applyFilter(db, db.selectFrom('exchanges').select('seq'), { [name]: value }).limit(1).executeTakeFirst()) !== undefined) return;
    if (known.includes(value)) {
      unmatched.push({ filter: name, value, nearest: [], configured: true });
      return;
    }
    // groups and rules are JSON arrays of names; the others one name.
    const column = name === 'group' ? 'groups' : name === 'rule' ? 'rules' : name;
    const rows = await db.selectFrom('exchanges').select(column).distinct().where(column, 'is not', null).limit(maxCandidates).execute();
    const values = rows.map((row) => (row as Record<string, string>)[column]!);
    const names = column === name ? values : values.flatMap(namesOf);
    unmatched.push({ filter: name, value, nearest: closestNames(value, [...known, ...names]) });
  };
  // An operation of a known shape (`sql.drop`) that nothing did yet is a true "none".
  if (filter.operation !== undefined && !isOperationName(filter.operation)) await check('operation', filter.operation);
  await check('connection', filter.connection, configured.connections);
  await check('subject', filter.subject);
  await check('group', filter.group);
  await check('rule', filter.rule, configured.rules);
  return unmatched;
}

/** The same for `reviews list`: its connection and subject filters, against the reviews. */
export async function unmatchedReviewFilters(db: Kysely<Database>, filter: { readonly connection?: string | undefined; readonly subject?: string | undefined }, configured: ConfiguredNames): Promise<UnmatchedFilter[]> {
  const unmatched: UnmatchedFilter[] = [];
  const checks: [name: 'connection' | 'subject', value: string | undefined, known: readonly string[]][] = [['connection', filter.connection, configured.connections], ['subject', filter.subject, []]];
  for (const [name, value, known] of checks) {
    if (!value) continue;
    if ((await db.selectFrom('reviews').select('id').where(name, '=', value).limit(1).executeTakeFirst()) !== undefined) continue;
    if (known.includes(value)) {
      unmatched.push({ filter: name, value, nearest: [], configured: true });
      continue;
    }
    const rows = await db.selectFrom('reviews').select(name).distinct().limit(maxCandidates).execute();
    unmatched.push({ filter: name, value, nearest: closestNames(value, [...known, ...rows.map((row) => row[name])]) });
  }
  return unmatched;
}

/** The names in a recorded JSON array (nothing from a value that is not one: a hint must not fail). */
function namesOf(list: string): string[] {
  try {
    const value: unknown = JSON.parse(list);
    return Array.isArray(value) ? value.filter((name): name is string => typeof name === 'string') : [];
  } catch {
    return [];
  }
}
