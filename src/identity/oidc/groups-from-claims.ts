// Groups from an IdP token's claims:
// - each configured claim path is read; a path is first tried as one claim name (URL
//   claims such as `https://example.com/groups` contain dots), then as a dotted path
//   into nested objects (`realm_access.roles`);
// - a value may be an array of strings, or one string of space- or comma-separated
//   names (the OAuth `scope` style); anything else is ignored;
// - with a groupMap, only mapped groups are kept (an IdP group that happens to share a
//   Gatehouse group's name grants nothing unless mapped); without one, names pass as-is.

export type GroupMap = Readonly<Record<string, string | readonly string[]>>;

const maxGroups = 1024;

export function readClaimPath(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  if (Object.hasOwn(claims, path)) return claims[path];
  let value: unknown = claims;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

function namesOf(value: unknown): string[] {
  if (typeof value === 'string') return value.split(/[\s,]+/).filter(Boolean);
  if (Array.isArray(value)) return value.filter((v): v is string => typeof v === 'string' && v !== '');
  return [];
}

export function groupsFromClaims(claims: Readonly<Record<string, unknown>>, paths: readonly string[], groupMap: GroupMap | undefined): string[] {
  const groups = new Set<string>();
  for (const path of paths) {
    for (const name of namesOf(readClaimPath(claims, path))) {
      if (groups.size >= maxGroups) break;
      if (!groupMap) {
        groups.add(name);
        continue;
      }
      if (!Object.hasOwn(groupMap, name)) continue;
      const mapped = groupMap[name]!;
      for (const g of typeof mapped === 'string' ? [mapped] : mapped) groups.add(g);
    }
  }
  return [...groups];
}
