// `gatehouse audit alerts [--since T] [--until T] [--limit N] [--json]`: the alerts the
// gateways raised (src/server/start-alerts.ts), newest first: what a responder opens
// first, read from the chain, as the SIEM got them through the sinks.

import type { Kysely } from 'kysely';
import { listAlerts, maxAlertsPage } from '../../audit/alerts/list-alerts.js';
import type { Database } from '../../store/index.js';
import { CliError } from '../cli-error.js';
import { oneLine } from '../terminal-text.js';
import { printTable } from './keys.js';
import { cliTime } from './search-options.js';

export interface AlertsOptions {
  readonly since?: string | undefined;
  readonly until?: string | undefined;
  readonly limit?: string | undefined;
  readonly json?: boolean | undefined;
}

export async function alertsCommand(db: Kysely<Database>, options: AlertsOptions): Promise<void> {
  const limit = options.limit === undefined ? 100 : Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > maxAlertsPage) throw new CliError(`--limit must be an integer from 1 to ${maxAlertsPage}`);
  const alerts = await listAlerts(db, { since: cliTime(options.since, 'since'), until: cliTime(options.until, 'until'), limit });
  if (options.json) {
    process.stdout.write(`${JSON.stringify(alerts)}\n`);
    return;
  }
  const facts = (details: Readonly<Record<string, unknown>>) =>
    Object.entries(details)
      .filter(([key]) => key !== 'alert')
      .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
      .join(' ');
  printTable(
    ['SEQ', 'AT', 'ALERT', 'TARGET', 'DETAILS'],
    alerts.map((a) => [String(a.seq), a.at, oneLine(String(a.details['alert'] ?? '-')), oneLine(a.target ?? '-'), oneLine(facts(a.details))]),
  );
}
