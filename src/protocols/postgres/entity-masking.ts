// Entity detection (masking profiles, src/mask) over the values of a result, keeping
// each value valid for its column type. Enforces:
// - text-like values (text, varchar, char, name, unknown): each entity is replaced by its
//   profile's operator; `drop` sends NULL (the value goes, as a JSON field would);
// - json and jsonb: the string values inside are masked as in a JSON body (keys, numbers
//   and structure kept, `drop` removes the field); a profile's `fields` paths start at
//   the column's name (`notes`, `profile.email`, `**.email`);
// - any other type is scanned in its text form (in binary format, the texts it carries:
//   binary-texts.ts decodes numbers, arrays and records): such a value cannot hold a
//   label and stay valid for its type, so one that carries an entity is sent as NULL;
// - binary values of types that hold no text (dates, uuid, bytea …) are not scanned;
// - free text (the database's error and notice fields, notification payloads:
//   server-messages.ts) is scanned with every profile, `fields` ignored;
// - COPY rows (text or CSV lines, no column names) are scanned with every profile,
//   `fields` ignored; a finding that would take a field separator, a quote or a line
//   break with it cannot be replaced without breaking the row, so the caller stops the
//   statement instead (undefined).

import { applyFindings, maskJsonAt, maskJsonSource, maskLabelIn, type EntityCounts, type MaskPlan } from '../../mask/index.js';
import { binaryTexts, scansBinary } from './binary-texts.js';
import { isTextType, type ColumnDescription } from './codec.js';

/** Masks one value (its bytes as sent): the new bytes, null for NULL, undefined when unchanged. */
export type ValueMasker = (value: Buffer, counts: EntityCounts) => Buffer | null | undefined;

export interface EntityMasking {
  /** How values of this column are masked; undefined: they are not scanned. */
  column(column: ColumnDescription): ValueMasker | undefined;
  /** A COPY row's line, masked; undefined when it cannot be masked and stay a valid row. */
  line(text: string, counts: EntityCounts): string | undefined;
  /** Free text (an error's message, a notification's payload) masked with every profile, `fields` ignored. */
  text(text: string, counts: EntityCounts): string;
  /** A label the profiles write (`[EMAIL]`) in `text` written into `column`, when they mask that column; undefined when none. */
  labelIn(column: string, text: string): string | undefined;
}

// Type OIDs (pg_type.h).
const JSON_OID = 114;
const JSONB_OID = 3802;

/** What a COPY finding must not span: the text and CSV formats' separators, quotes and escapes. */
const rowSyntax = /[\t\n\r,"\\]/;

export function entityMasking(plan: MaskPlan): EntityMasking {
  return {
    column(column) {
      const path = [column.name];
      const binary = column.format === 1;
      if (isTextType(column.typeOid)) return (value, counts) => maskText(value.toString('utf8'), path, plan, counts);
      if (column.typeOid === JSON_OID || (column.typeOid === JSONB_OID && !binary)) return (value, counts) => maskJson(value.toString('utf8'), path, plan, counts);
      // Binary jsonb: a version byte (1), then the document's text.
      if (column.typeOid === JSONB_OID) {
        return (value, counts) => {
          if (value[0] !== 1) return null; // a version this gateway cannot read: not sent unscanned
          const masked = maskJson(value.toString('utf8', 1), path, plan, counts);
          return masked ? Buffer.concat([value.subarray(0, 1), masked]) : masked;
        };
      }
      if (!binary) return (value, counts) => (carries(value.toString('utf8'), path, plan, counts) ? null : undefined);
      const oid = column.typeOid;
      if (!scansBinary(oid)) return undefined;
      return (value, counts) => {
        let found = false;
        for (const text of binaryTexts(oid, value)) if (carries(text, path, plan, counts)) found = true;
        return found ? null : undefined;
      };
    },
    line(text, counts) {
      const findings = plan.find(text);
      for (const f of findings) if (rowSyntax.test(text.slice(f.start, f.end))) return undefined;
      return applyFindings(text, findings, counts);
    },
    text(text, counts) {
      return applyFindings(text, plan.find(text), counts);
    },
    labelIn(column, text) {
      return masksColumn(plan, column) ? maskLabelIn(plan, text) : undefined;
    },
  };
}

/** Whether the profiles mask values of `column`: no `fields`, or one whose path starts at it (or at any name). */
function masksColumn(plan: MaskPlan, column: string): boolean {
  if (plan.fields === undefined) return true;
  const name = column.toLowerCase();
  return plan.fields.some((f) => {
    const first = f.split(/[.[]/, 1)[0]!.toLowerCase();
    return first === name || first.startsWith('*');
  });
}

function maskText(text: string, path: readonly string[], plan: MaskPlan, counts: EntityCounts): Buffer | null | undefined {
  const masked = maskJsonAt(text, path, plan, counts);
  if (masked === undefined) return null;
  return masked === text ? undefined : Buffer.from(masked as string, 'utf8');
}

/** A document masked in its own text (numbers and whitespace as the database wrote them). */
function maskJson(text: string, path: readonly string[], plan: MaskPlan, counts: EntityCounts): Buffer | null | undefined {
  let masked: string | undefined;
  try {
    masked = maskJsonSource(text, plan, counts, path);
  } catch {
    // The database sends valid JSON; if it did not, the value is not sent unscanned.
    return null;
  }
  if (masked === undefined) return null;
  return masked === text ? undefined : Buffer.from(masked, 'utf8');
}

function carries(text: string, path: readonly string[], plan: MaskPlan, counts: EntityCounts): boolean {
  const masked = maskJsonAt(text, path, plan, counts);
  return masked !== text;
}
