// The values a query's result columns carry, as derive-columns.ts traces them: a column
// (its name, the source columns its value is computed from, whether a whole row feeds
// it, whether it is a table's column as named), a `*` over a table (width unknown), or
// `any`; the scopes a query's names resolve in; and what a list of them becomes as a
// result (resultsOf), stored under names (store), combined by UNION (combine) or
// renamed by an alias's column list (rename). Enforces:
// - past a `*` over a table, a position, and so a name given by position, is unknown:
//   a value stored or combined there may land under any name (wholeRow, `any`);
// - a plain column kept under its own name is no store; one computed from itself is.

/** A result column that is not a plain table column. */
export interface DerivedColumn {
  /** As the client will see it: the alias, or the name PostgreSQL gives the expression. */
  readonly name: string;
  /** Index in the result: ≥ 0 from the start, < 0 from the end; undefined: find it by name. */
  readonly position: number | undefined;
  readonly sources: readonly string[];
  readonly wholeRow: boolean;
  /** The value is exactly this table column's, under another name (`phone as "User_phone"`, as ORMs alias every column). */
  readonly copyOf?: string;
}

/** A value kept under a name (`target`: e.g. `column "e" of view v`; undefined: unknown). */
export interface StoredColumn {
  readonly target: string | undefined;
  readonly name: string | undefined;
  readonly sources: readonly string[];
  readonly wholeRow: boolean;
}

export interface Derivation {
  /** The result's derived columns (undefined: none). */
  readonly results?: readonly DerivedColumn[];
  /** Every result column may carry any value (a set operation over `*`). */
  readonly any?: true;
  readonly stores?: readonly StoredColumn[];
}

/** A result column: its name, the columns its value comes from, and whether it is a table's column under its own name. */
export interface Col {
  readonly name: string;
  readonly sources: ReadonlySet<string>;
  readonly wholeRow: boolean;
  readonly plain: boolean;
  /** An alias of a plain table column: that column's name. */
  readonly copyOf?: string;
}
/** A `*` over a table: its columns, by their own names, count unknown. */
export const tableStar = { star: true } as const;
/** Every column may carry anything. */
export const anyColumn = { any: true } as const;
export type Entry = Col | typeof tableStar | typeof anyColumn;

/** A FROM item: a table (its columns unknown) or rows whose columns are traced. */
export type Item = { kind: 'table' } | { kind: 'rows'; entries: readonly Entry[] };
/** The FROM items a query's names resolve in, by name and in order, inside its outer query's scope. */
export interface Scope {
  readonly items: Map<string, Item>;
  readonly order: Item[];
  readonly parent: Scope | undefined;
  readonly ctes: ReadonlyMap<string, readonly Entry[]>;
}

export const emptySet: ReadonlySet<string> = new Set();

/** The derived columns of a result, by position where a `*` leaves it known (a plain column is masked by its name). */
export function resultsOf(entries: readonly Entry[]): { results?: DerivedColumn[]; any?: true } {
  if (entries.some((e) => 'any' in e)) return { any: true };
  const first = entries.findIndex((e) => 'star' in e);
  const last = entries.length - 1 - [...entries].reverse().findIndex((e) => 'star' in e);
  const results: DerivedColumn[] = [];
  entries.forEach((e, i) => {
    if ('star' in e || 'any' in e || e.plain || (e.sources.size === 0 && !e.wholeRow)) return;
    const position = first < 0 || i < first ? i : i > last ? i - entries.length : undefined;
    results.push({ name: e.name, position, sources: [...e.sources], wholeRow: e.wholeRow, ...(e.copyOf !== undefined ? { copyOf: e.copyOf } : {}) });
  });
  return results.length > 0 ? { results } : {};
}

/** Values written under names: `names` positional (undefined: the entries' own names). */
export function store(out: StoredColumn[], entries: readonly Entry[], columns: string[] | undefined, what: string, plainMoves: boolean): void {
  // After a `*` over a table (width unknown) the position, and so the name, of a value is unknown.
  let shifted = false;
  entries.forEach((e, i) => {
    if ('star' in e) {
      // A table's columns keep their own names, unless stored by position (any of them may be masked).
      if (plainMoves || (columns !== undefined && (shifted || i < columns.length))) out.push({ target: `${what} by position (from a *)`, name: undefined, sources: [], wholeRow: true });
      shifted = true;
      return;
    }
    if ('any' in e) return void out.push({ target: what, name: undefined, sources: [], wholeRow: true });
    const name = columns ? (shifted ? undefined : columns[i]) : plainMoves ? undefined : e.name;
    // Under its own name a plain column is masked as before; elsewhere its values move.
    if (e.plain && !plainMoves && name === e.name) return;
    // Nothing, or a column copied into itself. A column computed from itself (`set ssn =
    // substr(ssn, 1, 7)`) is a store: under a `partial` rule it would show another part.
    if (!e.wholeRow && (e.sources.size === 0 || (e.plain && [...e.sources].every((s) => s === name)))) return;
    out.push({ target: name === undefined ? what : `column "${name}" of ${what}`, name, sources: [...e.sources], wholeRow: e.wholeRow });
  });
}

export function newScope(parent: Scope | undefined, ctes: ReadonlyMap<string, readonly Entry[]>): Scope {
  return { items: new Map(), order: [], parent, ctes };
}

export function lookup(scope: Scope | undefined, name: string): Item | undefined {
  for (let s = scope; s; s = s.parent) {
    const item = s.items.get(name);
    if (item) return item;
  }
  return undefined;
}

export interface Flow {
  sources: Set<string>;
  wholeRow: boolean;
  /** The expression is a column of a table, by this name. */
  plain?: string;
}

export function addEntry(e: Entry, flow: Flow): void {
  if ('star' in e || 'any' in e) flow.wholeRow = true;
  else {
    for (const s of e.sources) flow.sources.add(s);
    if (e.wholeRow) flow.wholeRow = true;
  }
}

/** UNION and co: by position when both sides' widths are known. */
export function combine(left: readonly Entry[], right: readonly Entry[]): readonly Entry[] {
  const known = (es: readonly Entry[]) => es.every((e) => !('star' in e) && !('any' in e));
  if (known(left) && known(right) && left.length === right.length) {
    return left.map((l, i) => {
      const a = l as Col;
      const b = right[i] as Col;
      return { name: a.name, sources: new Set([...a.sources, ...b.sources]), wholeRow: a.wholeRow || b.wholeRow, plain: a.plain && b.plain && a.name === b.name };
    });
  }
  // The result takes the left branch's names and the right's values by position: past a
  // `*` (width unknown) a right-hand value, even a plain column (`select * from orders
  // union select id, email from users`), may land under any left-hand name.
  return [anyColumn];
}

export function rename(entries: readonly Entry[], colnames: string[] | undefined): readonly Entry[] {
  if (!colnames) return entries;
  const out: Entry[] = [];
  let i = 0;
  let untraceable = false;
  for (const e of entries) {
    if ('star' in e) untraceable = true; // a table's width is unknown: later names land anywhere
    else if ('any' in e || i >= colnames.length) out.push(e);
    else {
      const name = colnames[i++]!;
      out.push(name === e.name ? e : { name, sources: new Set([...e.sources, e.name]), wholeRow: e.wholeRow, plain: false });
    }
  }
  if (!untraceable) return out;
  return [...out, ...colnames.slice(i).map((c): Col => ({ name: c, sources: emptySet, wholeRow: true, plain: false })), anyColumn];
}
