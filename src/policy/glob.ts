// Glob patterns for names (`sql.*`, `gpt-4*`, `/models/*/download`): `*` matches any
// run of characters, everything else is literal. Matched without a regex engine, in
// linear time: the first and last pieces are anchored, the middle ones found in order.

export type NameMatcher = (value: string) => boolean;

export function compileGlob(pattern: string): NameMatcher {
  if (!pattern.includes('*')) return (value) => value === pattern;
  const pieces = pattern.split('*');
  const first = pieces[0]!;
  const last = pieces[pieces.length - 1]!;
  const middle = pieces.slice(1, -1).filter((p) => p !== '');
  const minLength = first.length + last.length;
  return (value) => {
    if (value.length < minLength || !value.startsWith(first) || !value.endsWith(last)) return false;
    let at = first.length;
    const end = value.length - last.length;
    for (const piece of middle) {
      const found = value.indexOf(piece, at);
      if (found === -1 || found + piece.length > end) return false;
      at = found + piece.length;
    }
    return true;
  };
}

/** True when any of the patterns matches. */
export function compileGlobs(patterns: readonly string[]): NameMatcher {
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const globs = patterns.filter((p) => p.includes('*')).map(compileGlob);
  if (globs.length === 0) return (value) => exact.has(value);
  return (value) => exact.has(value) || globs.some((g) => g(value));
}

export function isLiteral(patterns: readonly string[]): boolean {
  return patterns.every((p) => !p.includes('*'));
}
