// docs/errors.md, "On PostgreSQL connections", tells a driver's author which SQLSTATE
// each Gatehouse code arrives with: a row naming the code, or the "any other code" rule
// by HTTP status. This keeps that table true for every code sqlstateOf maps, so a code
// with a SQLSTATE of its own (agent_unavailable: 08001, not the 58000 a 503 falls back
// to) is never left to a fallback the code does not follow.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { errorCodes, errorRegistry, GatehouseError } from '../../src/errors/index.js';
import { sqlstateOf } from '../../src/protocols/postgres/errors.js';

const docPath = fileURLToPath(new URL('../../docs/errors.md', import.meta.url));
const doc = readFileSync(docPath, 'utf8');

/** The table under "## On PostgreSQL connections": code → documented SQLSTATE. */
function documentedSqlstates(): Map<string, string> {
  const section = doc.split('\n## On PostgreSQL connections')[1]?.split('\n## ')[0];
  assert.ok(section, `${docPath}: no "On PostgreSQL connections" section`);
  const byCode = new Map<string, string>();
  for (const line of section.split('\n')) {
    const row = /^\| ([^|]*) \| `([0-9A-Z]{5})`/.exec(line);
    if (!row) continue;
    for (const code of row[1]!.matchAll(/`([a-z_]+)`/g)) byCode.set(code[1]!, row[2]!);
  }
  assert.ok(byCode.size > 10, `${docPath}: the SQLSTATE table was not found`);
  return byCode;
}

/** The documented rule for a code without a row: "by status: 401 → 28P01, 403 → 42501, …". */
function byStatus(status: number): string {
  if (status === 401) return '28P01';
  if (status === 403) return '42501';
  if (status < 500) return '08P01';
  if (status === 503) return '58000';
  return 'XX000';
}

describe('docs/errors.md SQLSTATEs ↔ src/protocols/postgres/errors.ts', () => {
  test('the fallback rule is written as byStatus reads it', () => {
    assert.match(doc, /\| any other code \| by status: 401 → `28P01`, 403 → `42501`, other 4xx → `08P01`, 503 → `58000`, other 5xx → `XX000` \|/);
  });

  test('every code arrives with the SQLSTATE the table gives it (its row, else the rule by status)', () => {
    const documented = documentedSqlstates();
    const wrong: string[] = [];
    for (const code of errorCodes) {
      const actual = sqlstateOf(new GatehouseError(code));
      const row = documented.get(code);
      const expected = row ?? byStatus(errorRegistry[code].status);
      if (actual !== expected) wrong.push(`${code}: arrives as ${actual}, documented ${row ? `in its row as ${row}` : `by the rule for ${errorRegistry[code].status} as ${expected}`}`);
    }
    assert.deepEqual(wrong, [], `${docPath} "On PostgreSQL connections" is wrong for:\n${wrong.join('\n')}`);
  });
});
