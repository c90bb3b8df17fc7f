// Entity detection (masking profiles, src/mask) over the values of a result, keeping
// each value valid for its column type. Enforces:
// - text-like values (text, varchar, char, name, unknown): each entity is replaced by its
//   profile's operator; `drop` sends NULL (the value goes, as a JSON field would);
// - json and jsonb: the string values inside are masked as in a JSON body (keys, numbers
//   and structure kept, `drop` removes the field); a profile's `fields` paths start at
//   the column's name (`notes`, `profile.email`, `**.email`);
// - any other type in text format, and int2 / int4 / int8 / inet / cidr in binary, are
//   scanned in their text form: such a value cannot hold a label and stay valid for its
//   type, so one that carries an entity is sent as NULL;
// - other binary values (numeric, dates, uuid, bytea, arrays, composites) are not scanned;
// - free text (the database's error and notice fields, notification payloads:
//   server-messages.ts) is scanned with every profile, `fields` ignored;
// - COPY rows (text or CSV lines, no column names) are scanned with every profile,
//   `fields` ignored; a finding that would take a field separator, a quote or a line
//   break with it cannot be replaced without breaking the row, so the caller stops the
//   statement instead (undefined).

import { applyFindings, maskJsonAt, maskJsonSource, type EntityCounts, type MaskPlan } from '../../mask/index.js';
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
}

// Type OIDs (pg_type.h).
const JSON_OID = 114;
const JSONB_OID = 3802;
const INT2 = 21;
const INT4 = 23;
const INT8 = 20;
const INET = 869;
const CIDR = 650;

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
      const text = binary ? binaryText(column.typeOid) : (value: Buffer) => value.toString('utf8');
      if (!text) return undefined;
      return (value, counts) => (carries(text(value), path, plan, counts) ? null : undefined);
    },
    line(text, counts) {
      const findings = plan.find(text);
      for (const f of findings) if (rowSyntax.test(text.slice(f.start, f.end))) return undefined;
      return applyFindings(text, findings, counts);
    },
    text(text, counts) {
      return applyFindings(text, plan.find(text), counts);
    },
  };
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

/** The text form of a binary value of a type scanned in binary; undefined: not scanned. */
function binaryText(oid: number): ((value: Buffer) => string) | undefined {
  switch (oid) {
    case INT2:
      return (v) => String(v.readInt16BE(0));
    case INT4:
      return (v) => String(v.readInt32BE(0));
    case INT8:
      return (v) => String(v.readBigInt64BE(0));
    case INET:
    case CIDR:
      return inetText;
    default:
      return undefined;
  }
}

/** inet / cidr in binary: family (2 IPv4, 3 IPv6), prefix bits, is-cidr, length, address. */
function inetText(v: Buffer): string {
  const length = v[3] ?? 0;
  const address = v.subarray(4, 4 + length);
  if (v[0] === 2) return [...address].join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < address.length; i += 2) groups.push(address.readUInt16BE(i).toString(16));
  return groups.join(':');
}
