// What a `COPY … TO STDOUT` sends, learnt from its text before it runs, so that its rows
// can be masked by column (copy-rows.ts) on a connection with column rules. Enforces:
// - its columns are those of a SELECT the gateway describes on the database: for
//   `COPY (query) TO STDOUT` the query itself (cut from the text by the parser's own
//   tokens), for `COPY table [(columns)] TO STDOUT` `SELECT columns|* FROM table`
//   (identifiers quoted as the parser read them; without a column list, less the
//   table's generated columns, which COPY leaves out: copy-out.ts);
// - the query's derivation (derive-columns.ts) is the one a SELECT of it would have:
//   aliases and expressions over masked columns are masked as in SELECT results;
// - the row syntax is read from its options (FORMAT, DELIMITER, NULL, QUOTE, ESCAPE,
//   HEADER, FORCE_QUOTE, ENCODING) with PostgreSQL's defaults; what the gateway could not
//   read rows of (binary, another encoding, an option it does not know, a separator of
//   more than one byte) is refused before it runs (a string: why).

import { parse, scan } from 'libpg-query';
import { deriveColumns, type Derivation } from './derive-columns.js';
import type { Node } from './parse-tree-names.js';

/** The row syntax of a COPY in text or CSV format (separators are single ASCII bytes). */
export interface CopyFormat {
  readonly csv: boolean;
  readonly delimiter: number;
  /** What stands for NULL, as sent (`\N` in text, the empty string in CSV by default). */
  readonly nullString: Buffer;
  readonly quote: number;
  readonly escape: number;
  /** The first row is the column names. */
  readonly header: boolean;
  /** FORCE_QUOTE: every column (true), or these (CSV: quoted whatever their value). */
  readonly forceQuote: true | readonly string[];
}

export interface CopyOut {
  /** The SELECT whose columns the COPY sends. */
  readonly select: string;
  /** Its derivation, as a SELECT of it has (undefined: every column plain). */
  readonly derivation: Derivation | undefined;
  /** `COPY table TO` without a column list: the table, whose generated columns the COPY leaves out (and `*` does not). */
  readonly table?: string;
  readonly format: CopyFormat;
}

// Options of COPY FROM only: the database refuses them on COPY TO before any row.
const fromOnly = new Set(['freeze', 'force_not_null', 'force_null', 'default', 'on_error', 'log_verbosity', 'reject_limit']);

/** The COPY … TO STDOUT in `text`, or why its rows could not be masked. */
export async function copyOutOf(text: string): Promise<CopyOut | string> {
  let stmt: Node | undefined;
  try {
    const tree = (await parse(text)) as { stmts?: { stmt: Node }[] };
    stmt = tree.stmts?.length === 1 ? tree.stmts[0]!.stmt : undefined;
  } catch {
    return 'it could not be parsed';
  }
  const node = stmt?.CopyStmt as Node | undefined;
  if (!node || node.is_from || node.filename !== undefined || node.is_program) return 'it is not a COPY … TO STDOUT of its own (an EXECUTE of one, say)';
  const format = formatOf((node.options as Node[] | undefined) ?? []);
  if (typeof format === 'string') return format;
  const query = node.query as Node | undefined;
  if (query) {
    const select = await innerQuery(text);
    if (select === undefined) return 'its query could not be cut from its text';
    const [kind, inner] = Object.entries(query)[0] as [string, Node];
    return { select, derivation: deriveColumns(kind, inner), format };
  }
  const relation = node.relation as Node | undefined;
  if (!relation || typeof relation.relname !== 'string') return 'it names no table';
  const table = [relation.catalogname, relation.schemaname, relation.relname].filter((n): n is string => typeof n === 'string').map(quoteIdent).join('.');
  const columns = ((node.attlist as Node[] | undefined) ?? []).map((c) => (c.String as { sval?: string } | undefined)?.sval);
  if (columns.some((c) => typeof c !== 'string')) return 'its column list could not be read';
  if (columns.length > 0) return { select: `select ${columns.map((c) => quoteIdent(c!)).join(', ')} from ${table}`, derivation: undefined, format };
  return { select: `select * from ${table}`, derivation: undefined, table, format };
}

/** `COPY ( query ) …`: the text between the parenthesis after COPY and its match, by the parser's tokens (strings and comments may hold parentheses). */
async function innerQuery(text: string): Promise<string | undefined> {
  const bytes = Buffer.from(text, 'utf8');
  const tokens = (await scan(text)).tokens.filter((t) => t.tokenName !== 'C_COMMENT' && t.tokenName !== 'SQL_COMMENT');
  if (tokens[0]?.text.toLowerCase() !== 'copy' || tokens[1]?.text !== '(') return undefined;
  let depth = 0;
  for (let i = 1; i < tokens.length; i++) {
    const t = tokens[i]!.text;
    if (t === '(') depth++;
    else if (t === ')' && --depth === 0) return bytes.subarray(tokens[1]!.end, tokens[i]!.start).toString('utf8');
  }
  return undefined;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The row syntax its options give (PostgreSQL's defaults otherwise), or why it is refused. */
function formatOf(options: readonly Node[]): CopyFormat | string {
  let csv = false;
  const given = new Map<string, string>();
  let header = false;
  let forceQuote: true | string[] = [];
  for (const option of options) {
    const def = option.DefElem as Node;
    const name = String(def.defname);
    const arg = def.arg as Node | undefined;
    if (fromOnly.has(name)) continue; // the database refuses them on COPY TO
    if (name === 'force_quote') {
      if (arg?.A_Star) forceQuote = true;
      else if (forceQuote !== true) forceQuote.push(...((arg?.List as Node | undefined)?.items as Node[] | undefined ?? []).map((i) => String((i.String as { sval?: string } | undefined)?.sval)));
      continue;
    }
    if (name === 'header') {
      const on = booleanOf(arg);
      if (on === undefined) return `its HEADER option is not one the gateway reads`;
      header = on;
      continue;
    }
    const value = (arg?.String as { sval?: string } | undefined)?.sval;
    if (value === undefined) return `its ${name.toUpperCase()} option is not a string`;
    switch (name) {
      case 'format':
        if (value.toLowerCase() === 'binary') return 'it is in binary format, whose values the gateway cannot mask (use the text or CSV format)';
        if (value.toLowerCase() !== 'csv' && value.toLowerCase() !== 'text') return `its format ${value} is not text or CSV`;
        csv = value.toLowerCase() === 'csv';
        break;
      case 'encoding':
        // The rows would be in another encoding, where a separator byte may be part of a character (SJIS).
        if (!/^(utf-?8|unicode)$/i.test(value)) return `its rows would be in encoding ${value}; only UTF8 can be masked`;
        break;
      case 'delimiter':
      case 'quote':
      case 'escape':
        if (Buffer.byteLength(value) !== 1 || value.charCodeAt(0) > 0x7f) return `its ${name.toUpperCase()} is not a single one-byte character`;
        given.set(name, value);
        break;
      case 'null':
        given.set(name, value);
        break;
      default:
        return `the gateway does not know its option ${name.toUpperCase()}`;
    }
  }
  const quote = (given.get('quote') ?? '"').charCodeAt(0);
  return {
    csv,
    delimiter: (given.get('delimiter') ?? (csv ? ',' : '\t')).charCodeAt(0),
    nullString: Buffer.from(given.get('null') ?? (csv ? '' : '\\N'), 'utf8'),
    quote,
    escape: given.has('escape') ? given.get('escape')!.charCodeAt(0) : quote,
    header,
    forceQuote,
  };
}

/** A boolean option as PostgreSQL reads one (defGetBoolean): no value is true. */
function booleanOf(arg: Node | undefined): boolean | undefined {
  if (arg === undefined) return true;
  if (arg.Boolean) return (arg.Boolean as { boolval?: boolean }).boolval === true;
  if (arg.Integer) {
    const n = (arg.Integer as { ival?: number }).ival ?? 0;
    return n === 0 ? false : n === 1 ? true : undefined;
  }
  const s = (arg.String as { sval?: string } | undefined)?.sval?.toLowerCase();
  if (s === undefined) return undefined;
  if (['true', 'on', 'yes', '1', 't', 'y'].includes(s)) return true;
  if (['false', 'off', 'no', '0', 'f', 'n'].includes(s)) return false;
  return undefined;
}
