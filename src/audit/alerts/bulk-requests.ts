// Alert: one identity making more requests than a person or a well-behaved agent does
// in a short time: a leaked key scripted to page through customer data, an agent in a
// loop. Every exchange counts (HTTP requests and SQL statements alike, refused ones
// too), per subject, in a fixed window that starts at its first exchange; the exchange
// that reaches `requests` raises one alert, and the rest of that window raises no other.
// Memory is bounded: at most `maxTracked` subjects, the oldest forgotten first. Counted
// per gateway. Policy limits (docs/policy.md) refuse such volume; this only reports it.

export interface BulkRequestsConfig {
  readonly requests: number;
  readonly window: number;
}

export type BulkRequestsAlert = {
  readonly alert: 'bulk-requests';
  readonly subject: string;
  readonly requests: number;
  readonly since: number;
  readonly windowMs: number;
  /** The connection of the exchange that reached the count. */
  readonly connection: string;
};

export interface BulkRequests {
  counted(subject: string, connection: string, now: number): BulkRequestsAlert | undefined;
}

export function bulkRequests(config: BulkRequestsConfig, maxTracked = 100_000): BulkRequests {
  const windows = new Map<string, { count: number; since: number }>();
  return {
    counted(subject, connection, now) {
      let window = windows.get(subject);
      if (!window || now - window.since >= config.window) {
        windows.delete(subject);
        window = { count: 0, since: now };
        windows.set(subject, window);
        if (windows.size > maxTracked) windows.delete(windows.keys().next().value!);
      }
      window.count++;
      if (window.count !== config.requests) return undefined;
      return { alert: 'bulk-requests', subject, requests: window.count, since: window.since, windowMs: config.window, connection };
    },
  };
}
