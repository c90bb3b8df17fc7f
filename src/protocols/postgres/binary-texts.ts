// The texts a binary-format value carries, for masking profiles to scan (entity-masking.ts)
// as they scan the same value's text form. Drivers that ask for binary results (Npgsql,
// asyncpg, pgx, JDBC past its prepare threshold) would otherwise get arrays, records,
// numerics and extension types unscanned. Enforces:
// - int2/int4/int8, float4/float8, numeric, inet/cidr are decoded to the text PostgreSQL
//   writes for them (a card number in a numeric, a phone number in a float8);
// - an array (its header names its element type) and a record (each field names its
//   type) yield the texts of their elements and fields, each decoded by its own type,
//   also for types of the database's own (an enum's or a domain's array, a composite);
// - types that cannot hold text (bool, dates and times, uuid, geometry, bytea …) yield
//   nothing: they are not scanned, as a bytea's hex text form is not;
// - anything else (xml, tsvector, an enum, citext, hstore, a value this decoder cannot
//   cut) is scanned as the UTF-8 text of its bytes, where text-based types keep it;
// - nesting is bounded (DEPTH); what lies deeper is scanned as UTF-8 bytes.

import { isTextType } from './codec.js';

// Type OIDs (pg_type.h).
const INT2 = 21;
const INT4 = 23;
const INT8 = 20;
const FLOAT4 = 700;
const FLOAT8 = 701;
const NUMERIC = 1700;
const INET = 869;
const CIDR = 650;
const JSON_OID = 114;
const JSONB = 3802;

/** Types whose binary form holds no text: bool, bytea, "char", oid and the reg* types, tid, xid, cid, money, geometry, macaddr, dates and times, bit strings, uuid, pg_lsn. */
const textless = new Set([16, 17, 18, 24, 26, 27, 28, 29, 600, 601, 602, 603, 604, 628, 718, 774, 790, 829, 1082, 1083, 1114, 1184, 1186, 1266, 1560, 1562, 2202, 2203, 2204, 2205, 2206, 2950, 3220, 3734, 3769, 4089, 4096]);

/** Arrays and records nested deeper than this are scanned as their bytes. */
const DEPTH = 8;

/** Whether binary values of type `oid` can hold text to scan. */
export function scansBinary(oid: number): boolean {
  return !textless.has(oid);
}

/** The texts to scan in a binary value of type `oid`; an empty list: nothing to scan. */
export function binaryTexts(oid: number, value: Buffer, depth = 0): string[] {
  if (isTextType(oid) || oid === JSON_OID) return [value.toString('utf8')];
  if (textless.has(oid)) return [];
  switch (oid) {
    case INT2:
      return value.length === 2 ? [String(value.readInt16BE(0))] : [bytesText(value)];
    case INT4:
      return value.length === 4 ? [String(value.readInt32BE(0))] : [bytesText(value)];
    case INT8:
      return value.length === 8 ? [String(value.readBigInt64BE(0))] : [bytesText(value)];
    case FLOAT4:
      return value.length === 4 ? [String(value.readFloatBE(0))] : [bytesText(value)];
    case FLOAT8:
      return value.length === 8 ? [String(value.readDoubleBE(0))] : [bytesText(value)];
    case NUMERIC:
      return [numericText(value) ?? bytesText(value)];
    case INET:
    case CIDR:
      return [inetText(value)];
    case JSONB:
      // A version byte (1), then the document's text.
      return [value.toString('utf8', value[0] === 1 ? 1 : 0)];
  }
  if (depth < DEPTH) {
    // The array and record formats are checked to the last byte, so a value of another
    // type is not taken for one (and if it were, its bytes are scanned all the same).
    const parts = arrayElements(value) ?? recordFields(value);
    if (parts) return parts.flatMap((p) => binaryTexts(p.oid, p.value, depth + 1));
  }
  return [bytesText(value)];
}

interface Part {
  readonly oid: number;
  readonly value: Buffer;
}

/**
 * array_send: ndim, has-nulls flag, element type, then per dimension its length and lower
 * bound, then each element as a length (-1: NULL) and its bytes. undefined: not that shape.
 */
function arrayElements(v: Buffer): Part[] | undefined {
  if (v.length < 12) return undefined;
  const ndim = v.readInt32BE(0);
  const flags = v.readInt32BE(4);
  const oid = v.readUInt32BE(8);
  if (ndim < 0 || ndim > 6 || (flags !== 0 && flags !== 1)) return undefined;
  let at = 12;
  let count = ndim === 0 ? 0 : 1;
  for (let d = 0; d < ndim; d++) {
    if (at + 8 > v.length) return undefined;
    const n = v.readInt32BE(at);
    if (n < 0) return undefined;
    count *= n;
    at += 8;
  }
  const parts: Part[] = [];
  for (let i = 0; i < count; i++) {
    const next = sized(v, at);
    if (!next) return undefined;
    if (next.value) parts.push({ oid, value: next.value });
    at = next.end;
  }
  return at === v.length ? parts : undefined;
}

/** record_send: the field count, then each field as its type, a length (-1: NULL) and its bytes. */
function recordFields(v: Buffer): Part[] | undefined {
  if (v.length < 4) return undefined;
  const count = v.readInt32BE(0);
  if (count < 0 || count > 1664) return undefined; // MaxTupleAttributeNumber
  let at = 4;
  const parts: Part[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 4 > v.length) return undefined;
    const oid = v.readUInt32BE(at);
    const next = sized(v, at + 4);
    if (!next) return undefined;
    if (next.value) parts.push({ oid, value: next.value });
    at = next.end;
  }
  return at === v.length ? parts : undefined;
}

/** A length-prefixed value at `at` (-1: NULL, no bytes). */
function sized(v: Buffer, at: number): { value: Buffer | undefined; end: number } | undefined {
  if (at + 4 > v.length) return undefined;
  const n = v.readInt32BE(at);
  if (n === -1) return { value: undefined, end: at + 4 };
  if (n < 0 || at + 4 + n > v.length) return undefined;
  return { value: v.subarray(at + 4, at + 4 + n), end: at + 4 + n };
}

/**
 * numeric_send: ndigits, weight (of the first digit, in base 10000), sign, dscale, then the
 * base-10000 digits; written as numeric_out does (dscale digits after the point).
 */
export function numericText(v: Buffer): string | undefined {
  if (v.length < 8) return undefined;
  const ndigits = v.readUInt16BE(0);
  const weight = v.readInt16BE(2);
  const sign = v.readUInt16BE(4);
  const dscale = v.readUInt16BE(6);
  if (v.length !== 8 + 2 * ndigits) return undefined;
  if (sign === 0xc000) return 'NaN';
  if (sign === 0xd000) return 'Infinity';
  if (sign === 0xf000) return '-Infinity';
  if (sign !== 0 && sign !== 0x4000) return undefined;
  const digit = (i: number) => (i >= 0 && i < ndigits ? v.readUInt16BE(8 + 2 * i) : 0);
  let int = '';
  for (let i = 0; i <= weight; i++) int += i === 0 ? String(digit(i)) : String(digit(i)).padStart(4, '0');
  let frac = '';
  for (let i = weight + 1; frac.length < dscale; i++) frac += String(digit(i)).padStart(4, '0');
  const text = (int === '' ? '0' : int) + (dscale > 0 ? `.${frac.slice(0, dscale)}` : '');
  return sign === 0x4000 ? `-${text}` : text;
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

/** The value's bytes read as UTF-8 (text-based types keep their text so; the rest is noise around it). */
function bytesText(v: Buffer): string {
  return v.toString('utf8');
}
