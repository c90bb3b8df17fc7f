// Extended query state (PostgreSQL docs, "Extended Query"): prepared statements and
// portals by name, as the client's Parse, Bind, Describe and Close messages leave them.
// Enforces:
// - a Describe is answered to the object it named when it was sent: with pipelining, a
//   later Bind may reuse the name before the answer comes;
// - a portal keeps its Bind parameters (text; binary ones as a marker) for the record,
//   and for approvals the exact values (binary ones by their SHA-256);
// - an Execute's rows are described by the portal's Describe, or else by the
//   statement's with the Bind's result formats; never by a Bind the database refused;
// - a SQL DECLARE or CLOSE forgets the portal of its name: an Execute of a cursor's name
//   is never described by a portal bound earlier under it (whose transaction ended);
//   the other way round, a SQL FETCH of a bound portal is checked by the session
//   (client-statements.ts: its answer does not carry the portal's statement);
// - malformed Describe / Close subtypes are protocol violations.

import { createHash } from 'node:crypto';
import { bodyReader, parseBind, ProtocolViolation, type ColumnDescription, type Frame } from './codec.js';
import { statementShape } from './decide-statement.js';
import type { StatementFacts } from './inspect-sql.js';
import type { PortalInfo, StatementInfo } from './session-state.js';

export class ExtendedQuery {
  readonly #statements = new Map<string, StatementInfo>();
  readonly #portals = new Map<string, PortalInfo>();

  /**
   * Parse, or SQL PREPARE (the two share one namespace in PostgreSQL: a Bind or an
   * EXECUTE may name either): the statement as inspected.
   */
  prepare(name: string, text: string, facts: readonly StatementFacts[], executes?: StatementInfo['executes'], absent?: readonly string[]): () => void {
    // A named statement prepared again without a Close or DEALLOCATE the gateway saw is
    // refused by the database (42P05), unless a function's dynamic SQL deallocated it
    // unseen: either may be what runs, so it is decided as both from now on.
    const previous = this.#statements.get(name);
    const earlier = name === '' ? undefined : previous;
    const all = earlier ? [...earlier.facts, ...facts] : facts;
    const info: StatementInfo = { facts: all, text, shape: statementShape(all, text, undefined, absent), textJson: JSON.stringify(text), columns: undefined, ...(executes ? { executes } : {}) };
    this.#statements.set(name, info);
    // A Parse the database skipped (an error earlier in its batch) left the name's
    // statement as it was: the unnamed one too, which a Parse otherwise replaces.
    return () => {
      if (this.#statements.get(name) !== info) return;
      if (previous) this.#statements.set(name, previous);
      else this.#statements.delete(name);
    };
  }

  /** A prepared statement by name (the unnamed one is ''). */
  statement(name: string): StatementInfo | undefined {
    return this.#statements.get(name);
  }

  /**
   * SQL DEALLOCATE name, or '*' (DEALLOCATE ALL, DISCARD ALL: every named statement), as
   * decided: the returned function forgets those statements once the database has run
   * it (a Query failing before it, or a Parse of it never executed, leaves them
   * prepared). Only entries still the same are forgotten: a PREPARE of the name after it
   * in the same Query stays.
   */
  deallocation(name: string): () => void {
    // DEALLOCATE ALL spares the unnamed statement; a Close names it as ''.
    const gone = name === '*' ? [...this.#statements].filter(([key]) => key !== '') : [[name, this.#statements.get(name)] as const];
    return () => {
      for (const [key, info] of gone) if (info !== undefined && this.#statements.get(key) === info) this.#statements.delete(key);
    };
  }

  /** Bind ('B'): a portal over a statement (unknown if prepared with SQL PREPARE). */
  bind(message: Frame): PortalInfo {
    const bind = parseBind(message);
    const binary = bind.binary;
    const approvalParams = binary && bind.params.map((p, i) => (binary.has(i) ? `binary sha256:${createHash('sha256').update(binary.get(i)!).digest('hex')}` : p));
    const portal: PortalInfo = { statement: this.#statements.get(bind.statement), params: bind.params, approvalParams, resultFormats: bind.resultFormats, columns: undefined };
    this.#portals.set(bind.portal, portal);
    return portal;
  }

  /** A portal by name, as the client's Binds left it (the unnamed one is ''). */
  portal(name: string): PortalInfo | undefined {
    return this.#portals.get(name);
  }

  /** Describe ('D'): 'S' statement or 'P' portal; the object its answer describes. */
  describe(message: Frame): StatementInfo | PortalInfo | undefined {
    const r = bodyReader(message);
    const target = String.fromCharCode(r.int8());
    if (target !== 'S' && target !== 'P') throw new ProtocolViolation(`invalid DESCRIBE message subtype ${target}`);
    const name = r.cstring();
    return target === 'S' ? this.#statements.get(name) : this.#portals.get(name);
  }

  /**
   * A SQL DECLARE or CLOSE of this name ('*': CLOSE ALL) ran: a portal the gateway saw
   * bound under it is gone, and an Execute of the name may run the cursor's rows, which
   * the old Bind's description does not describe.
   */
  forgetPortal(name: string): void {
    if (name === '*') this.#portals.clear();
    else this.#portals.delete(name);
  }

  /**
   * Close ('C'): 'S' statement or 'P' portal. A portal is forgotten at once (an Execute of
   * an unknown portal is refused); a statement only when the database has closed it (the
   * returned function, at CloseComplete): after an error it skips the Close, and the
   * statement stays prepared.
   */
  close(message: Frame): (() => void) | undefined {
    const r = bodyReader(message);
    const target = String.fromCharCode(r.int8());
    const name = r.cstring();
    if (target === 'S') return this.deallocation(name);
    if (target !== 'P') throw new ProtocolViolation(`invalid CLOSE message subtype ${target}`);
    this.#portals.delete(name);
    return undefined;
  }

  /** Execute ('E'): the portal it runs (undefined when unknown). Its row limit is left to the database (PortalSuspended). */
  execute(message: Frame): PortalInfo | undefined {
    const r = bodyReader(message);
    const name = r.cstring();
    r.int32(); // maximum rows (0: all)
    return this.#portals.get(name);
  }
}

/** The description of an Execute's rows: the portal's own, or its statement's in the Bind's result formats. */
export function resultColumns(portal: PortalInfo | undefined): ColumnDescription[] | undefined {
  // A refused Bind left whatever portal had the name (kept past a ROLLBACK TO SAVEPOINT).
  if (portal?.bindFailed) return undefined;
  if (portal?.columns) return portal.columns;
  const columns = portal?.statement?.columns;
  if (!columns) return undefined;
  const f = portal.resultFormats;
  return columns.map((c, i) => ({ ...c, format: f.length === 0 ? 0 : f.length === 1 ? f[0]! : (f[i] ?? 0) }));
}
