// Human units in config: durations ("30s", "5m", "250ms" or a number of milliseconds)
// and sizes ("10MiB", "512KiB", "1MB" or a number of bytes).

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const sizeUnits: Record<string, number> = {
  b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

/** Parses a duration into milliseconds; returns undefined when it is not one. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/i.exec(value);
  if (!match) return undefined;
  return Math.round(Number(match[1]) * durationUnits[(match[2] ?? 'ms').toLowerCase()]!);
}

/** Milliseconds as the largest unit that divides them exactly: 3600000 → "1h", 90000 → "90s", 1500 → "1500ms". */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = durationUnits[unit]!;
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

// ISO 8601 times, extended ("2026-11-23T10:00:00Z", "2026-11-23T11:00+01:00",
// "2026-11-23") or basic ("20261123T100000Z") format. Date.parse alone also takes
// forms such as "Nov 23 2026" whose reading depends on the runtime.
const isoExtended = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;
const isoBasic = /^(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(?:(\d{2})(?:[.,](\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * Parses an ISO 8601 time into epoch milliseconds; undefined when it is not one. As in
 * JavaScript, a date alone is midnight UTC and a time without a zone is local time.
 */
export function parseIsoTime(value: string): number | undefined {
  let text = value.trim().replace(/^(\d{4}-\d{2}-\d{2}) /, '$1T').replace(/t/, 'T').replace(/z$/, 'Z');
  const basic = isoBasic.exec(text);
  if (basic) {
    const [, y, mo, d, h, mi, s, frac, zone] = basic;
    const offset = zone === undefined || zone === 'Z' ? (zone ?? '') : `${zone.slice(0, 3)}:${zone.length > 3 ? zone.slice(-2) : '00'}`;
    text = `${y}-${mo}-${d}${h === undefined ? '' : `T${h}:${mi}${s === undefined ? '' : `:${s}${frac === undefined ? '' : `.${frac}`}`}${offset}`}`;
  }
  if (!isoExtended.test(text)) return undefined;
  // Date.parse rolls a day the month does not have over into the next month
  // (2026-02-30 is March 2): a time range or a prune must not silently move.
  const [year, month, day] = text.slice(0, 10).split('-').map(Number) as [number, number, number];
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0); // not Date.UTC: it reads years 0–99 as 1900–1999
  if (month < 1 || month > 12 || day < 1 || day > lastDay.getUTCDate()) return undefined;
  const time = Date.parse(text);
  return Number.isNaN(time) ? undefined : time;
}

/** Parses a size into bytes; returns undefined when it is not one. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i.exec(value);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * sizeUnits[(match[2] ?? 'b').toLowerCase()]!);
}
