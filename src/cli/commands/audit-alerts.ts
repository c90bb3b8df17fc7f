// `gatehouse audit alerts [--since T] [--until T] [--limit N] [--json]`: the alerts the
// gateways raised (`alert.raised` events, src/server/start-alerts.ts), newest first, read
// from the chain itself: what a responder opens first, and what the SIEM got as well.

import type { Kysely } from 'kysely';
import { parseIsoTime } from '../../config/units.js';
import type { Database } from '../../store/index.js';
import { CliError } from '../cli-error.js';
import { oneLine } from '../terminal-text.js';
import { printTable } from './keys.js';

export interface AlertsOptions {
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly limit?: string | undefined;
  readonly json?: boolean | undefined;
}

export async function listAlerts(db: Kysely<Database>, options: AlertsOptions): Promise<void> {
  const time = (flag: 'since' | 'until') => {
    const value = options[flag];
    if (value === undefined) return undefined;
    const at = parseIsoTime(value);
    if (at === undefined) throw new CliError(`--${flag} must be an ISO 8601 time, e.g. 2026-11-23T10:00:00Z`);
    return at;
  };
  const since = time('since');
  const until = time('until');
  const limit = options.limit === undefined ? 100 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1) throw new CliError('--limit must be a positive integer');
  let query = db.selectFrom('audit_events').select(['seq', 'id', 'at', 'actor', 'target', 'details']).where('kind', '=', 'alert.raised');
  if (since !== undefined) query = query.where('at', '>=', since);
  if (until !== undefined) query = query.where('at', '<', until);
  const rows = await query.orderBy('seq', 'desc').limit(limit).execute();
  const alerts = rows.map((row) => ({ seq: Number(row.seq), id: row.id, at: new Date(Number(row.at)).toISOString(), actor: row.actor, target: row.target, details: JSON.parse(row.details) as Record<string, unknown> }));
  if (options.json) {
    process.stdout.write(`${JSON.stringify(alerts)}\n`);
    return;
  }
  const facts = (details: Record<string, unknown>) =>
    Object.entries(details)
      .filter(([key]) => key !== 'alert')
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
  printTable(
    ['SEQ', 'AT', 'ALERT', 'TARGET', 'DETAILS'],
    alerts.map((a) => [String(a.seq), a.at, oneLine(String(a.details['alert'] ?? '-')), oneLine(a.target ?? '-'), oneLine(facts(a.details))]),
  );
}
