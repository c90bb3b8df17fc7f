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

/** Parses a size into bytes; returns undefined when it is not one. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i.exec(value);
  if (!match) return undefined;
  return Math.floor(Number(match[1]) * sizeUnits[(match[2] ?? 'b').toLowerCase()]!);
}
