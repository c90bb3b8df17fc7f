// A query the gateway runs on a session's own upstream connection at login, before the
// client gets control (function-catalog.ts, table-catalog.ts), and the cache that lets
// one answer serve the next logins of the same connection config. Enforces:
// - every message of the answer is consumed here: the client never sees it;
// - an ErrorResponse or an unexpected message fails the login (the caller's
//   upstream_failed): a session never runs without the catalog's answer;
// - an answer serves logins of the same config for `catalogTtlMs`, so many short logins
//   (pgbench -C) do not each pay it; a login after that reads it again.

import type { GatehouseError } from '../../errors/index.js';
import { cstring, message, parseDataRow, parseNoticeFields } from './codec.js';
import type { UpstreamSession } from './forward.js';

/** How long one login's answer serves the next logins of the same config. */
export const catalogTtlMs = 10_000;

/** Runs `query` on `upstream` up to its ReadyForQuery, handing each row's values (NULL: null) to `onRow`. */
export async function runCatalogQuery(
  upstream: UpstreamSession,
  query: string,
  onRow: (values: (Buffer | null)[]) => void,
  failed: (detail: string) => GatehouseError,
): Promise<void> {
  upstream.socket.write(message('Q', cstring(query)));
  let failure: string | undefined;
  for (;;) {
    const frame = await upstream.source.read();
    switch (frame.type) {
      case 'T': // RowDescription
      case 'C': // CommandComplete
      case 'N': // NoticeResponse
      case 'S': // ParameterStatus
        break;
      case 'D':
        onRow(parseDataRow(frame.body));
        break;
      case 'E': {
        const fields = parseNoticeFields(frame.body);
        failure = `${fields.get('C') ?? ''} ${fields.get('M') ?? ''}`.trim();
        break;
      }
      case 'Z':
        if (failure !== undefined) throw failed(failure);
        return;
      default:
        throw failed(`unexpected message '${frame.type}'`);
    }
  }
}

/** One catalog's answers by connection config, each for `catalogTtlMs`. */
export class CatalogCache<T> {
  readonly #entries = new Map<string, { readonly value: T; readonly at: number }>();

  /** The cached answer for `key`, or `read`'s (then cached). */
  async get(key: string, read: () => Promise<T>, now: number = Date.now()): Promise<T> {
    const hit = this.fresh(key, now);
    if (hit !== undefined) return hit;
    const value = await read();
    this.set(key, value, now);
    return value;
  }

  /** The answer for `key` read less than `catalogTtlMs` before `now`; undefined when there is none. */
  fresh(key: string, now: number = Date.now()): T | undefined {
    const hit = this.#entries.get(key);
    return hit && now - hit.at < catalogTtlMs ? hit.value : undefined;
  }

  set(key: string, value: T, now: number = Date.now()): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, at: now });
    // Bounded: a config per connection; the bound is a safeguard.
    if (this.#entries.size > 1000) this.#entries.delete(this.#entries.keys().next().value!);
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }

  clear(): void {
    this.#entries.clear();
  }
}
