// docs/errors.md is the user's reference for every error code; this keeps it in step
// with src/errors/registry.ts in both directions.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorCodes, errorRegistry, GatehouseError, isGatehouseError, type ErrorCode } from '../../src/errors/index.js';
import { errorEnvelope } from '../../src/protocols/http/write-error.js';

const docPath = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));
const doc = readFileSync(docPath, 'utf8');

interface DocRow {
  readonly line: number;
  readonly code: string;
  readonly status: number;
  readonly type: string;
  readonly message: string;
  readonly when: string;
}

/** Splits a markdown table row into cells (no escaped pipes are used in the doc). */
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

const unquote = (cell: string) => cell.replace(/^`(.*)`$/, '$1');
const unescapeHtml = (text: string) => text.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');

/** The rows of the table whose header starts `| code | status |`. */
function parseCodeTable(markdown: string): DocRow[] {
  const lines = markdown.split('\n');
  const header = lines.findIndex((l) => /^\|\s*code\s*\|\s*status\s*\|/i.test(l));
  assert.ok(header >= 0, `${docPath}: no table with a "| code | status |" header`);
  const columns = cells(lines[header]!).map((c) => c.toLowerCase());
  assert.deepEqual(columns.slice(0, 4), ['code', 'status', 'type', 'message'], `${docPath}:${header + 1}: unexpected columns`);
  assert.match(lines[header + 1] ?? '', /^\|(\s*:?-+:?\s*\|)+\s*$/, `${docPath}:${header + 2}: expected the table's separator row`);
  const rows: DocRow[] = [];
  for (let i = header + 2; i < lines.length && lines[i]!.trim().startsWith('|'); i++) {
    const row = cells(lines[i]!);
    assert.equal(row.length, columns.length, `${docPath}:${i + 1}: expected ${columns.length} cells, found ${row.length}`);
    const [code, status, type, message, when] = row as [string, string, string, string, string];
    assert.match(status, /^\d{3}$/, `${docPath}:${i + 1}: status "${status}" is not an HTTP status`);
    rows.push({ line: i + 1, code: unquote(code), status: Number(status), type: unquote(type), message: unescapeHtml(message), when });
  }
  return rows;
}

const rows = parseCodeTable(doc);

describe('docs/errors.md ↔ src/errors/registry.ts', () => {
  test('the table has rows', () => {
    assert.ok(rows.length > 0);
  });

  test('every registry code has a row, with the same status, type and message', () => {
    const missing: string[] = [];
    const mismatched: string[] = [];
    for (const code of errorCodes) {
      const entry = errorRegistry[code];
      const row = rows.find((r) => r.code === code);
      if (!row) {
        missing.push(`| \`${code}\` | ${entry.status} | \`${entry.type}\` | ${entry.message} | … |`);
        continue;
      }
      const at = `${docPath}:${row.line}: ${code}`;
      if (row.status !== entry.status) mismatched.push(`${at} is documented as ${row.status}, the registry says ${entry.status}`);
      if (row.type !== entry.type) mismatched.push(`${at} is documented with type ${row.type}, the registry says ${entry.type}`);
      if (row.message !== entry.message) mismatched.push(`${at} is documented with message ${JSON.stringify(row.message)}, the registry says ${JSON.stringify(entry.message)}`);
      if (row.when.length < 20) mismatched.push(`${at} needs a "when it happens, and what to do" explanation`);
    }
    assert.deepEqual(missing, [], `codes in src/errors/registry.ts missing from ${docPath}; add rows like:\n${missing.join('\n')}`);
    assert.deepEqual(mismatched, [], `rows of ${docPath} that differ from src/errors/registry.ts:\n${mismatched.join('\n')}`);
  });

  test('every code in the table exists in the registry', () => {
    const unknown = rows.filter((r) => !Object.hasOwn(errorRegistry, r.code)).map((r) => `${docPath}:${r.line}: ${r.code}`);
    assert.deepEqual(unknown, [], `codes documented in ${docPath} but not in src/errors/registry.ts (remove the row, or add the code):\n${unknown.join('\n')}`);
  });

  test('no code is documented twice', () => {
    const seen = new Map<string, number>();
    const duplicates: string[] = [];
    for (const row of rows) {
      const first = seen.get(row.code);
      if (first !== undefined) duplicates.push(`${row.code} (lines ${first} and ${row.line})`);
      seen.set(row.code, row.line);
    }
    assert.deepEqual(duplicates, []);
  });

  test('the table follows the registry order', () => {
    assert.deepEqual(
      rows.map((r) => r.code),
      errorCodes.filter((c) => rows.some((r) => r.code === c)),
      `keep the rows of ${docPath} in the order of src/errors/registry.ts`,
    );
  });
});

describe('registry', () => {
  test('codes are snake_case; statuses are 4xx or 5xx; types and messages are set', () => {
    for (const code of errorCodes) {
      const entry = errorRegistry[code];
      assert.match(code, /^[a-z]+(_[a-z]+)*$/, code);
      assert.ok(entry.status >= 400 && entry.status <= 599, `${code}: ${entry.status}`);
      assert.match(entry.type, /^[a-z]+(_[a-z]+)*$/, `${code}: ${entry.type}`);
      assert.ok(entry.message.length > 0 && /[.]$/.test(entry.message), `${code}: message should be a sentence`);
    }
  });

  test('GatehouseError takes status, type and message from the registry', () => {
    for (const code of errorCodes) {
      const error = new GatehouseError(code);
      assert.equal(error.code, code);
      assert.equal(error.status, errorRegistry[code].status);
      assert.equal(error.type, errorRegistry[code].type);
      assert.equal(error.message, errorRegistry[code].message);
      assert.equal(error.name, 'GatehouseError');
      assert.ok(isGatehouseError(error));
      assert.ok(error instanceof Error);
    }
    assert.equal(isGatehouseError(new Error('x')), false);
  });

  test('options override the message and carry detail, rule and cause', () => {
    const cause = new Error('socket hang up');
    const error = new GatehouseError('access_denied', { message: 'custom', detail: 'operator only', rule: 'r1', cause });
    assert.equal(error.message, 'custom');
    assert.equal(error.detail, 'operator only');
    assert.equal(error.rule, 'r1');
    assert.equal(error.cause, cause);
    assert.equal(new GatehouseError('internal_error').cause, undefined);
  });
});

describe('the data-plane envelope documented in docs/errors.md', () => {
  test('has message, type, code, param: null, and rule only when a rule decided', () => {
    const code: ErrorCode = 'access_denied';
    const withRule = JSON.parse(errorEnvelope(new GatehouseError(code, { message: 'm', rule: 'default-deny', detail: 'secret detail' }))) as unknown;
    assert.deepEqual(withRule, { error: { message: 'm', type: 'permission_error', code: 'access_denied', param: null, rule: 'default-deny' } });
    const withoutRule = JSON.parse(errorEnvelope(new GatehouseError('upstream_timeout', { detail: 'connect ETIMEDOUT' }))) as unknown;
    assert.deepEqual(withoutRule, { error: { message: 'The upstream did not answer in time.', type: 'upstream_error', code: 'upstream_timeout', param: null } });
  });

  test('the example in the doc is a valid envelope of a documented code', () => {
    const example = /\{"error":\{"message".*\}\}/.exec(doc);
    assert.ok(example, 'docs/errors.md should show an example data-plane envelope');
    const parsed = JSON.parse(example[0]) as { error: { code: ErrorCode; type: string; param: unknown } };
    assert.deepEqual(Object.keys(parsed.error), ['message', 'type', 'code', 'param', 'rule']);
    assert.equal(parsed.error.type, errorRegistry[parsed.error.code].type);
    assert.equal(parsed.error.param, null);
    assert.match(doc, /gatehouse-exchange-id/);
    assert.match(doc, /\{"error":\{"code","message"\}\}/);
  });
});
