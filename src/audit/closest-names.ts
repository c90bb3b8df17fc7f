// "Did you mean": the names nearest to a misspelt one, for a hint beside an empty answer.

/** Longer names are compared on their first this many characters (bounds the work per name). */
const comparedLength = 64;

/** Up to `count` of `candidates`, closest to `name` first (edit distance, case ignored; ties by name). */
export function closestNames(name: string, candidates: Iterable<string>, count = 5): string[] {
  const wanted = name.slice(0, comparedLength).toLowerCase();
  const ranked = [...new Set(candidates)].map((candidate) => ({ candidate, distance: editDistance(wanted, candidate.slice(0, comparedLength).toLowerCase()) }));
  ranked.sort((a, b) => a.distance - b.distance || (a.candidate < b.candidate ? -1 : a.candidate > b.candidate ? 1 : 0));
  return ranked.slice(0, count).map((r) => r.candidate);
}

/** Levenshtein distance: insertions, deletions and substitutions, one row at a time. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = row;
  }
  return previous[b.length]!;
}
