// Rows on their way to the client: DataRows of a query result and CopyData of COPY …
// TO STDOUT. Enforces:
// - `limits.maxRows`: a statement's rows beyond the limit are never sent; the session
//   stops the statement (row_limit_exceeded, and a cancel on the database);
// - DataRow values are masked with the plan made from their RowDescription
//   (mask-rows.ts); a row with nothing to mask leaves as the bytes that came;
// - rows of an Execute whose description the gateway never saw are refused when masking
//   is configured (fail closed: they cannot be masked), so are those of a statement it
//   never saw prepared when there are column rules, and so are rows whose derived
//   column expected by name (mask-rows.ts) is not in their description;
// - each statement is masked by its own rules (Run.masking: the connection's, and the
//   profiles its decision adds);
// - CopyData rows of a COPY described by the gateway (column rules: copy-out.ts) are
//   masked field by field (copy-rows.ts), a row that cannot be cut into its columns
//   stops the statement, and so does a CopyOutResponse that is binary or has another
//   number of columns than the description;
// - other CopyData rows (text or CSV) are masked by the masking profiles
//   (entity-masking.ts); a row that cannot be masked and stay valid stops the statement,
//   and binary COPY out is refused when there are profiles (its rows cannot be scanned).

import { performance } from 'node:perf_hooks';
import { GatehouseError } from '../../errors/index.js';
import { bodyEquals, frameLength, message, parseRowDescription, type ColumnDescription, type Frame } from './codec.js';
import type { PostgresConnection } from './connection.js';
import type { MaskingRules } from './mask-rows.js';
import { maskCopyRow } from './copy-rows.js';
import { resultColumns } from './extended-query.js';
import { derivationOf } from './derive-columns.js';
import { derivedMasks, maskDataRow, maskingActive, missingDerived, planMasking, type DerivedMasks } from './mask-rows.js';
import type { MaskPlan, PortalInfo, Run } from './session-state.js';

export interface RowShape {
  readonly body: Buffer;
  readonly columns: ColumnDescription[];
  readonly plan: MaskPlan;
  readonly derived: DerivedMasks | undefined;
  readonly rules: MaskingRules;
  /** The rows cannot be masked (a derived column the description does not have). */
  readonly error: GatehouseError | undefined;
}

export interface RowSink {
  /** Sends a message on to the client. */
  emit(bytes: Buffer | Frame): void;
  /** Ends the statement from the gateway's side with this error. */
  stop(run: Run, error: GatehouseError): void;
}

export class ResultRows {
  readonly #connection: PostgresConnection;
  readonly #sink: RowSink;
  #last: RowShape | undefined;

  constructor(connection: PostgresConnection, sink: RowSink) {
    this.#connection = connection;
    this.#sink = sink;
  }

  /**
   * A RowDescription's columns and masking plan. The last one is kept: a session mostly
   * runs the same statements, and comparing bytes is cheaper than parsing and planning.
   */
  describe(message: Frame, derived?: DerivedMasks, rules: MaskingRules = this.#connection.masking): RowShape {
    const last = this.#last;
    if (last && last.derived === derived && last.rules === rules && bodyEquals(message, last.body)) return last;
    const body = message.body;
    const columns = parseRowDescription(body);
    const shape = { body: Buffer.from(body), columns, plan: planMasking(columns, rules, derived), derived, rules, error: unmaskable(columns, derived) };
    this.#last = shape;
    return shape;
  }

  /** The plan for an Execute's rows, or the error when they cannot be masked. */
  planForExecute(portal: PortalInfo | undefined, rules: MaskingRules): MaskPlan | GatehouseError {
    const columns = resultColumns(portal);
    if (columns === undefined && maskingActive(rules)) {
      return new GatehouseError('sql_not_supported', { message: 'Rows cannot be masked without their description: Describe the statement or portal before Execute.' });
    }
    if (!columns) return undefined;
    // A statement the gateway never saw prepared (dynamic SQL in a function) may carry a
    // masked column's value under any name: its derivation is unknown.
    if (!portal?.statement && rules.columns.size > 0) {
      return new GatehouseError('sql_not_supported', { message: 'Rows of a statement the gateway never saw prepared cannot be masked (masking.columns): prepare it through the gateway (Parse or PREPARE).' });
    }
    const facts = portal?.statement?.facts;
    const derived = facts && derivedMasks(derivationOf(facts), rules);
    const error = unmaskable(columns, derived);
    if (error) return error;
    // Described by the session's last RowDescription (Describe, then Execute): planned already.
    const last = this.#last;
    return last && last.columns === columns && last.derived === derived && last.rules === rules ? last.plan : planMasking(columns, rules, derived);
  }

  /** A DataRow or CopyData of `run` (none: a statement the gateway does not track). */
  row(run: Run | undefined, frame: Frame, plan: MaskPlan): undefined {
    if (!run) {
      this.#sink.emit(frame);
      return;
    }
    if (run.error) return; // already stopped (row limit): nothing more of it leaves
    run.rows++;
    run.ttfbMs ??= performance.now() - run.started;
    const max = this.#connection.maxRows;
    if (max !== undefined && run.rows > max) {
      run.rows = max;
      this.#sink.stop(run, new GatehouseError('row_limit_exceeded', { message: `The query returned more than ${max} rows, the limit on connection "${this.#connection.name}" (maxRows); rows beyond it were not sent.` }));
      return;
    }
    let out: Buffer | Frame = frame;
    if (frame.type === 'D') {
      if (plan) out = maskDataRow(frame.raw, frame.body, plan, (run.maskCounts ??= {}));
    } else if (run.copy) {
      // CopyData of a COPY masked column by column (copy-out.ts): the header row is column names.
      const copy = run.copy;
      if (copy.headerLeft) copy.headerLeft = false;
      else if (copy.plan) {
        const masked = maskCopyRow(frame.body, copy.format, copy.plan, copy.forced, (run.maskCounts ??= {}));
        if (masked === undefined) {
          run.rows--; // not sent
          this.#sink.stop(run, new GatehouseError('sql_not_supported', { message: `A COPY row could not be read as ${copy.width} ${copy.format.csv ? 'CSV' : 'text-format'} fields, so its values could not be masked; the statement was stopped.` }));
          return;
        }
        if (masked !== frame.body) out = message('d', masked);
      }
    } else if (run.masking.entities) {
      // CopyData in text or CSV format: one row per message, scanned as a line.
      const text = frame.body.toString('utf8');
      const line = run.masking.entities.line(text, (run.maskCounts ??= {}));
      if (line === undefined) {
        run.rows--; // not sent
        this.#sink.stop(run, new GatehouseError('sql_not_supported', { message: 'A COPY row carries a value that cannot be masked without breaking the row (it spans a separator, a quote or a line break); the statement was stopped. Use SELECT.' }));
        return;
      }
      if (line !== text) out = message('d', Buffer.from(line, 'utf8'));
    }
    run.bytesOut += Buffer.isBuffer(out) ? out.length : frameLength(out);
    this.#sink.emit(out);
  }

  /** CopyOutResponse: Int8 overall format (0 text, 1 binary). */
  copyOut(run: Run | undefined, frame: Frame): undefined {
    // A COPY masked column by column: text or CSV, with the columns it was described with (a
    // table changed since, by another session, is not masked by a description of another).
    if (run?.copy && (frame.body[0] !== 0 || frame.body.readInt16BE(1) !== run.copy.width)) {
      this.#sink.stop(run, new GatehouseError('sql_not_supported', { message: `The COPY sends ${frame.body[0] !== 0 ? 'binary rows' : `${frame.body.readInt16BE(1)} columns`}, not the ${run.copy.width} columns in text the gateway described to mask them; the statement was stopped.` }));
    } else if (run && frame.body[0] === 1 && run.masking.entities) {
      this.#sink.stop(run, new GatehouseError('sql_not_supported', { message: 'COPY in binary format is refused on a connection with masking profiles (its rows cannot be scanned): use the text or CSV format.' }));
    } else {
      this.#sink.emit(frame);
    }
  }
}

function unmaskable(columns: readonly ColumnDescription[], derived: DerivedMasks | undefined): GatehouseError | undefined {
  const name = missingDerived(columns, derived);
  if (name === undefined) return undefined;
  return new GatehouseError('sql_not_supported', {
    message: `The result carries a value of masked column "${derived!.rule}" (masking.columns) in a column the gateway expected as "${name}" and cannot find, so it cannot be masked; the statement was stopped. Name the column with an alias.`,
  });
}
