// The alerts raised (`alert.raised` events), newest first, read from the chain itself:
// `gatehouse audit alerts` and `GET /api/alerts`.

import type { Kysely } from 'kysely';
import type { Database } from '../../store/index.js';

export interface RaisedAlert {
  readonly seq: number;
  readonly id: string;
  /** ISO 8601. */
  readonly at: string;
  readonly actor: string | null;
  readonly target: string | null;
  /** `alert` (its name) and its facts. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface AlertsQuery {
  /** Epoch milliseconds, inclusive. */
  readonly since?: number | undefined;
  /** Epoch milliseconds, exclusive. */
  readonly until?: number | undefined;
  readonly limit: number;
}

export const maxAlertsPage = 500;

export async function listAlerts(db: Kysely<Database>, query: AlertsQuery): Promise<RaisedAlert[]> {
  let select = db.selectFrom('audit_events').select(['seq', 'id', 'at', 'actor', 'target', 'details']).where('kind', '=', 'alert.raised');
  if (query.since !== undefined) select = select.where('at', '>=', query.since);
  if (query.until !== undefined) select = select.where('at', '<', query.until);
  const rows = await select.orderBy('seq', 'desc').limit(query.limit).execute();
  return rows.map((row) => ({ seq: Number(row.seq), id: row.id, at: new Date(Number(row.at)).toISOString(), actor: row.actor, target: row.target, details: JSON.parse(row.details) as Record<string, unknown> }));
}
