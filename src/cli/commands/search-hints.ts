// A search that found nothing because a filter names a value no exchange (or review)
// has (a typo: `--operation chat.completion`) says so on stderr, with the nearest names recorded or
// configured: stdout (a table, --json, an export's line) stays what it was.

import type { Kysely } from 'kysely';
import { unmatchedFilters, unmatchedReviewFilters, type ExchangeFilter, type UnmatchedFilter } from '../../audit/index.js';
import type { GatehouseConfig } from '../../config/index.js';
import type { Database } from '../../store/index.js';
import { oneLine } from '../terminal-text.js';

/** For an empty answer: one stderr line per filter whose value no exchange has. */
export async function hintUnmatchedFilters(db: Kysely<Database>, filter: ExchangeFilter, config: GatehouseConfig): Promise<void> {
  const unmatched = await unmatchedFilters(db, filter, { connections: config.connections.map((c) => c.name) });
  for (const u of unmatched) process.stderr.write(`gatehouse: ${oneLine(hintLine(u, 'exchange'))}\n`);
}

/** The same for an empty `reviews list`: its --connection and --subject. */
export async function hintUnmatchedReviewFilters(db: Kysely<Database>, filter: { connection?: string | undefined; subject?: string | undefined }, config: GatehouseConfig): Promise<void> {
  const unmatched = await unmatchedReviewFilters(db, filter, { connections: config.connections.map((c) => c.name) });
  for (const u of unmatched) process.stderr.write(`gatehouse: ${oneLine(hintLine(u, 'review'))}\n`);
}

function hintLine({ filter, value, nearest }: UnmatchedFilter, what: 'exchange' | 'review'): string {
  const why =
    filter === 'operation'
      ? `, which is not an operation's name (chat.completions, completions, embeddings, responses, http.<METHOD> <path>, sql.<class>)`
      : filter === 'connection'
        ? ', and no configured connection has that name'
        : '';
  const names = filter === 'connection' ? 'connections configured or recorded' : `recorded ${filter}s`;
  const near = nearest.length === 0 ? `; no ${filter === 'connection' ? 'connection is configured or' : `${what} is`} recorded yet` : `; ${names}, closest first: ${nearest.join(', ')}`;
  return `no ${what} has --${filter} ${JSON.stringify(value)}${why}${near}`;
}
