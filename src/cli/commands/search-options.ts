// The search filters shared by `sessions list` and `audit export`, so both select the
// same exchanges from the same flags.

import type { ExchangeFilter } from '../../audit/index.js';
import { CliError } from '../cli-error.js';
import { parseIsoTime } from '../../config/units.js';

export interface SearchOptions {
  readonly connection?: string | undefined;
  readonly subject?: string | undefined;
  readonly group?: string | undefined;
  readonly decision?: string | undefined;
  readonly operation?: string | undefined;
  readonly rule?: string | undefined;
  readonly review?: string | undefined;
  readonly text?: string | undefined;
  readonly since?: string | undefined;
  readonly until?: string | undefined;
}

function time(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseIsoTime(value);
  if (parsed === undefined) throw new CliError(`--${flag} must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z`);
  return parsed;
}

const decisions = ['allow', 'deny', 'require_approval'];

export function filterFromOptions(options: SearchOptions): ExchangeFilter {
  // A misspelt decision would match nothing and read as "none found".
  if (options.decision !== undefined && !decisions.includes(options.decision)) throw new CliError(`--decision must be one of ${decisions.join(', ')}`);
  const filter: Record<string, unknown> = {
    connection: options.connection,
    subject: options.subject,
    group: options.group,
    decision: options.decision,
    operation: options.operation,
    rule: options.rule,
    review: options.review,
    text: options.text,
    since: time(options.since, 'since'),
    until: time(options.until, 'until'),
  };
  // Swapped bounds match nothing, and the empty answer read as "nothing happened".
  if (typeof filter.since === 'number' && typeof filter.until === 'number' && filter.since > filter.until)
    throw new CliError(`--since ${options.since} is after --until ${options.until}: no time is in that range`);
  for (const key of Object.keys(filter)) if (filter[key] === undefined) delete filter[key];
  return filter as ExchangeFilter;
}
