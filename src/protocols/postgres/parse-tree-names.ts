// Reading libpg-query's parse tree (JSON) for names: a list of String nodes, a relation's
// (schema-qualified) name, and PostgreSQL's FigureColname — the name a result column
// gets when the query gives it none (`lower(email)` → `lower`, `x::text` → `x`), which is
// how derive-columns.ts finds a derived column in a RowDescription by name.

export type Node = Record<string, unknown>;

/** The strings of a list of String nodes (undefined when empty). */
export function names(list: unknown): string[] | undefined {
  if (!Array.isArray(list) || list.length === 0) return undefined;
  return list.map((n) => sval(n as Node) ?? '');
}

/** A list of {String: {sval}} nodes (a qualified name) as strings, skipping any other node. */
export function stringList(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  return list.map((item) => (item as { String?: { sval?: unknown } }).String?.sval).filter((s): s is string => typeof s === 'string');
}

/** A String node's value. */
export function sval(node: Node | undefined): string | undefined {
  const s = (node?.String as { sval?: unknown } | undefined)?.sval;
  return typeof s === 'string' ? s : undefined;
}

/** A RangeVar's name, `schema.table` when qualified. */
export function relName(rel: unknown): string {
  const r = rel as { schemaname?: string; relname?: string } | undefined;
  return r?.schemaname ? `${r.schemaname}.${r.relname}` : String(r?.relname);
}

// PostgreSQL's FigureColname (parser/parse_target.c): the name a result column gets.
export function figureColname(node: Node): string {
  return figure(node)[0];
}

function figure(node: Node): [string, number] {
  const [kind, n] = (Object.entries(node)[0] ?? ['', {}]) as [string, Node];
  switch (kind) {
    case 'ColumnRef': {
      const fields = n.fields as Node[];
      const name = sval(fields[fields.length - 1]);
      return name !== undefined ? [name, 2] : ['?column?', 0];
    }
    case 'A_Indirection': {
      const ind = n.indirection as Node[];
      const name = sval(ind[ind.length - 1]);
      return name !== undefined ? [name, 2] : figure(n.arg as Node);
    }
    case 'FuncCall': {
      const fname = n.funcname as Node[];
      return [sval(fname[fname.length - 1]) ?? '?column?', 2];
    }
    case 'A_Expr':
      return n.kind === 'AEXPR_NULLIF' ? ['nullif', 2] : ['?column?', 0];
    case 'TypeCast': {
      const inner = figure(n.arg as Node);
      if (inner[1] > 0) return inner;
      const tn = ((n.typeName as Node).names as Node[]) ?? [];
      const t = sval(tn[tn.length - 1]);
      return t !== undefined ? [t, 1] : ['?column?', 0];
    }
    case 'CollateClause':
      return figure(n.arg as Node);
    case 'GroupingFunc':
      return ['grouping', 2];
    case 'SubLink':
      switch (n.subLinkType) {
        case 'EXISTS_SUBLINK': return ['exists', 2];
        case 'ARRAY_SUBLINK': return ['array', 2];
        case 'EXPR_SUBLINK': {
          const first = ((((n.subselect as Node).SelectStmt as Node).targetList as Node[] | undefined) ?? [])[0]?.ResTarget as Node | undefined;
          if (!first) return ['?column?', 0];
          return typeof first.name === 'string' ? [first.name, 2] : figure(first.val as Node);
        }
        default: return ['?column?', 0];
      }
    case 'CaseExpr': {
      const inner = n.defresult ? figure(n.defresult as Node) : (['?column?', 0] as [string, number]);
      return inner[1] <= 1 ? ['case', 1] : inner;
    }
    case 'A_ArrayExpr': return ['array', 2];
    case 'RowExpr': return ['row', 2];
    case 'CoalesceExpr': return ['coalesce', 2];
    case 'MinMaxExpr': return [n.op === 'IS_GREATEST' ? 'greatest' : 'least', 2];
    case 'XmlExpr': {
      const op = String(n.op);
      const map: Record<string, string> = { IS_XMLCONCAT: 'xmlconcat', IS_XMLELEMENT: 'xmlelement', IS_XMLFOREST: 'xmlforest', IS_XMLPARSE: 'xmlparse', IS_XMLPI: 'xmlpi', IS_XMLROOT: 'xmlroot', IS_XMLSERIALIZE: 'xmlserialize' };
      return map[op] ? [map[op]!, 2] : ['?column?', 0];
    }
    case 'XmlSerialize': return ['xmlserialize', 2];
    default:
      return ['?column?', 0];
  }
}

/**
 * Visits every object node of a parse tree (arrays are walked through), with an
 * explicit stack rather than recursion (no depth cap). `visit` returns false to skip the
 * node's children; `push` adds a node to visit instead.
 */
export function walkTree(root: unknown, visit: (node: Node, push: (child: unknown) => void) => boolean | void): void {
  const stack: unknown[] = [root];
  const push = (child: unknown) => void stack.push(child);
  while (stack.length > 0) {
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const child of node) stack.push(child);
      continue;
    }
    if (visit(node as Node, push) === false) continue;
    for (const child of Object.values(node)) stack.push(child);
  }
}
