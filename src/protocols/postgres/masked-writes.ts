// Masked values written back over the values they stand for. An ORM that saves every
// column of a row it read (Hibernate without @DynamicUpdate, knex `update(row)`, a form
// that round-trips a record) sends back what the gateway showed it: `[EMAIL]` or
// `*******1120` would replace the stored email or SSN. Enforces:
// - on a connection with column rules, a Bind parameter written into a masked column
//   (INSERT's column list and VALUES, UPDATE … SET, ON CONFLICT DO UPDATE SET; `$n` or
//   `$n::type`) whose value is that column's label (`[EMAIL]`, as `redact` and derived
//   columns show it) or, under `partial`, a partial mask of a value (`*******1120`),
//   refuses the statement (sql_not_supported); nothing is written;
// - on a connection with masking profiles, a Bind parameter written into a column they
//   mask (all, or those their `fields` start at) that contains one of their labels
//   (`[EMAIL]`, `[EMAIL:3f9a1c2b7d4e]` under hash: mask-labels.ts), anywhere in the text
//   (`call [EMAIL]`, `{"mail":"[EMAIL]"}` in jsonb), refuses the statement too.
// Not seen: values written as literals in the SQL text (their shape's facts do not hold
// literals), masks that are NULL (`null` rules, non-text columns): a NULL written back
// cannot be told from one meant, and a profile's `partial` masks inside a text
// (`***-**-6789`), which cannot be told from text a client meant.

import { GatehouseError } from '../../errors/index.js';
import type { EntityMasking } from './entity-masking.js';
import type { MaskOperator } from './mask-rows.js';
import type { Node } from './parse-tree-names.js';

/** A Bind parameter (1-based) written into a column by name. */
export interface ParamWrite {
  readonly column: string;
  readonly param: number;
}

/** The parameters an INSERT or UPDATE writes straight into named columns. */
export function paramWrites(kind: string, node: Node): ParamWrite[] {
  const writes: ParamWrite[] = [];
  const targets = (list: unknown) => {
    for (const t of (list as Node[] | undefined) ?? []) {
      const rt = t.ResTarget as Node | undefined;
      const param = rt && typeof rt.name === 'string' ? paramOf(rt.val) : undefined;
      if (param !== undefined) writes.push({ column: rt!.name as string, param });
    }
  };
  if (kind === 'UpdateStmt') targets(node.targetList);
  if (kind === 'InsertStmt') {
    const columns = ((node.cols as Node[] | undefined) ?? []).map((c) => (c.ResTarget as Node | undefined)?.name);
    const rows = (((node.selectStmt as Node | undefined)?.SelectStmt as Node | undefined)?.valuesLists as Node[] | undefined) ?? [];
    for (const row of rows) {
      ((row.List as Node | undefined)?.items as Node[] | undefined)?.forEach((item, i) => {
        const param = paramOf(item);
        const column = columns[i];
        if (param !== undefined && typeof column === 'string') writes.push({ column, param });
      });
    }
    targets((node.onConflictClause as Node | undefined)?.targetList);
  }
  return writes;
}

/** `$n` or `$n::type`: n. */
function paramOf(value: unknown): number | undefined {
  let v = value as Node | undefined;
  while (v?.TypeCast) v = (v.TypeCast as Node).arg as Node | undefined;
  const ref = v?.ParamRef as Node | undefined;
  return typeof ref?.number === 'number' ? ref.number : undefined;
}

/**
 * The refusal of an Execute that would write a masked column's mask over its value, or a
 * text carrying a label the masking profiles write (`call [EMAIL]`, `{"mail":"[EMAIL]"}`)
 * into a column they mask; undefined when none would.
 */
export function maskedWriteRefusal(writes: readonly ParamWrite[], params: readonly (string | null)[], columns: ReadonlyMap<string, MaskOperator>, entities?: EntityMasking): GatehouseError | undefined {
  for (const w of writes) {
    const column = w.column.toLowerCase();
    const op = columns.get(column);
    const value = params[w.param - 1];
    if (typeof value !== 'string') continue;
    const label = op === undefined ? entities?.labelIn(w.column, value) : undefined;
    if (label !== undefined) {
      return new GatehouseError('sql_not_supported', {
        message: `The statement would write a value containing ${JSON.stringify(label)} into column "${w.column}": that is how the gateway's masking profiles show what they hide, not a value, and it would replace the stored text; it was not run. Write only the columns the client changed, with their real text.`,
      });
    }
    if (op === undefined || op === 'null') continue;
    if (value === `[${column.toUpperCase()}]` || (op === 'partial' && partialMask(value))) {
      return new GatehouseError('sql_not_supported', {
        message: `The statement would write ${JSON.stringify(value)} into column "${w.column}": that is how the gateway shows the column masked (masking.columns), not its value, and it would replace the stored value; it was not run. Write only the columns the client changed.`,
      });
    }
  }
  return undefined;
}

/** What mask-rows.ts `partial` makes of a value: all but its last 4 characters (fewer under 8) as `*`. */
function partialMask(value: string): boolean {
  const chars = [...value];
  const hidden = chars.length - (chars.length >= 8 ? 4 : Math.floor(chars.length / 4));
  return hidden > 0 && chars.slice(0, hidden).every((c) => c === '*');
}
