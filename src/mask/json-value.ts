// Small helpers over parsed JSON values, shared by the streaming maskers.

export type Json = Record<string, unknown>;

export function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `value` without the members named in `keys` (the same object when there are none). */
export function omit(value: Json, keys: readonly string[]): Json {
  if (keys.length === 0) return value;
  const out: Json = {};
  for (const [k, v] of Object.entries(value)) if (!keys.includes(k)) out[k] = v;
  return out;
}
