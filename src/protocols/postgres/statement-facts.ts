// What inspection finds in one statement (StatementFacts) and in a query (SqlInspection):
// the facts policy, masking, recording and the session read. Produced by
// describe-statement.ts, cached by inspect-sql.ts.

import type { Derivation } from './derive-columns.js';
import type { RoleLoginChange } from './role-login.js';
import type { ParamWrite } from './masked-writes.js';

export interface StatementFacts {
  readonly class: string;
  readonly tables: readonly string[];
  /** Kebab-case names of risky shapes, e.g. `delete-without-where`. */
  readonly risky: readonly string[];
  /** This statement's own text, cut from the query. */
  readonly text: string;
  /** COPY … TO STDOUT (data leaves as CopyData, not DataRow). */
  readonly copyOut?: boolean;
  /** COPY to or from a file on the database server, or a program run there: which form (for the refusal's message). */
  readonly copyServer?: CopyServerForm;
  /** Why the gateway cannot let this statement through, whatever policy says. */
  readonly unsupported?: string;
  /** PREPARE name AS …: the name (the facts are those of the statement it prepares). */
  readonly prepares?: string;
  /** The prepared statement it runs (EXECUTE name, also inside EXPLAIN ANALYZE or CREATE TABLE AS). */
  readonly executes?: string;
  /** DEALLOCATE name, or '*' for DEALLOCATE ALL and DISCARD ALL. */
  readonly deallocates?: string;
  /** Result columns (and stored values) derived from other columns, for column masking. */
  readonly derived?: Derivation;
  /** Built-in names it calls unqualified (a function of the same name elsewhere may be the one run). */
  readonly calls?: readonly string[];
  /** Built-in names it gives a function of its own (CREATE FUNCTION lower(int), ALTER FUNCTION … RENAME TO lower). */
  readonly defines?: readonly string[];
  /**
   * The portal it opens or closes by name (DECLARE name, CLOSE name; '*' for CLOSE ALL):
   * SQL cursors and the protocol's portals share one namespace.
   */
  readonly cursor?: string;
  /**
   * The tables whose rows a statement that is not a SELECT reads into its answer or into
   * something the client reads later (RETURNING, COPY TO, INSERT … SELECT, CREATE VIEW,
   * CREATE TABLE AS, ATTACH PARTITION …): it is decided as `sql.select` of them too.
   */
  readonly reads?: readonly string[];
  /**
   * Tables it makes descendants of others, `[child, parent]` as written (CREATE TABLE …
   * PARTITION OF / INHERITS, ALTER TABLE … INHERIT / ATTACH PARTITION): the session
   * knows the child's rows as the parent's from then on (table-catalog.ts SessionTables).
   */
  readonly inherits?: readonly (readonly [child: string, parent: string])[];
  /**
   * Names among `tables` that stand only for a CTE of the statement wherever it names
   * them: not relations, so the session never looks them up in the catalog.
   */
  readonly ctes?: readonly string[];
  /**
   * It may change which schema a bare table name stands for (search-path.ts): SET or
   * RESET search_path, RESET ALL, DISCARD ALL, SET ROLE or SESSION AUTHORIZATION
   * ("$user"), set_config of one of those or of a setting not named by a literal, an
   * UPDATE of pg_settings, code the gateway does not see (a user-defined function, CALL,
   * DO, SQL in a string).
   */
  readonly searchPath?: true;
  /** ROLLBACK TO SAVEPOINT: settings changed since the savepoint (search_path) go back. */
  readonly revertsSettings?: true;
  /** FETCH name: the portal whose rows it answers with (a protocol portal's too). */
  readonly fetches?: string;
  /** How it changes a role's login (ALTER ROLE … PASSWORD, NOLOGIN, RENAME …: role-login.ts); risky `role-login`. */
  readonly roleLogin?: RoleLoginChange;
  /** Bind parameters an INSERT or UPDATE writes straight into named columns (masked-writes.ts). */
  readonly writes?: readonly ParamWrite[];
}

/** `COPY … TO PROGRAM`, `COPY … FROM PROGRAM`, `COPY … TO '/file'`, `COPY … FROM '/file'`. */
export type CopyServerForm = 'to-program' | 'from-program' | 'to-file' | 'from-file';

export type SqlInspection = { readonly ok: true; readonly statements: readonly StatementFacts[] } | { readonly ok: false; readonly error: string };
