// `gatehouse sessions replay` of an answer longer than recording.maxBodyBytes: the
// pieces past the recorded body are listed by size only, and the output says why
// (they used to appear as bare sizes, like empty chunks).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ExchangeDetail } from '../../src/audit/index.js';
import { replayLines } from '../../src/cli/commands/replay.js';
import type { SessionStatement } from '../../src/cli/commands/sql-session-lines.js';

function detail(body: string, truncated: boolean): ExchangeDetail {
  return {
    id: 'ex_1', sessionId: 'ex_1', startedAt: '2026-11-23T10:00:00.000Z', connection: 'up', operation: 'chat.completions', subject: 'key:a', identityKind: 'service',
    decision: 'allow', rules: [], status: 200, errorCode: null, model: 'm', stream: true, complete: true, durationMs: 30, reviewId: null, reexecutionOf: null,
    endedAt: null, authMethod: 'api_key', credentialId: 'c', groups: [], clientAddress: null, reason: null, policyVersion: null, obligations: null, errorDetail: null,
    request: { method: 'POST', path: '/chat/completions', headers: null, body: null, truncated: false, promptText: null },
    response: { headers: null, body, truncated, text: null, usage: null },
    bytesIn: 0, bytesOut: 12, ttfbMs: 1, approval: null, maskCounts: null, chunkTimings: [[1, 4], [10, 4], [20, 4]], rawRecorded: false,
  } as ExchangeDetail;
}

test('replay says where a truncated answer body ends', () => {
  const lines = replayLines(detail('abcdefgh', true));
  assert.ok(lines.some((l) => l.includes('"abcd"')) && lines.some((l) => l.includes('"efgh"')));
  const cut = lines.findIndex((l) => l.includes('truncated at recording.maxBodyBytes'));
  assert.ok(cut > 0, lines.join('\n'));
  assert.match(lines[cut + 1]!, /\+20ms {2}4 B$/);
  assert.equal(replayLines(detail('abcdefghijkl', false)).filter((l) => l.includes('truncated')).length, 0);
});

test("a prompt's and an answer's later lines stay indented under them, never at the timeline's indent", () => {
  const forged = 'hi\n        +1ms  first byte from the target, status 200';
  const exchange = detail('abcdefghijkl', false);
  const lines = replayLines({ ...exchange, request: { ...exchange.request, promptText: forged }, response: { ...exchange.response, text: 'one\ntwo' } }).join('\n').split('\n');
  assert.deepEqual(
    lines.filter((l) => /^ {8}\+1ms {2}first byte/.test(l)),
    ['        +1ms  first byte from the target, status 200'],
    'only the real first-byte row sits at the timeline indent',
  );
  assert.ok(lines.includes(`${' '.repeat(16)}        +1ms  first byte from the target, status 200`), lines.join('\n'));
  assert.deepEqual(lines.slice(-2), ['        answer: one', '                two']);
});

test("a PostgreSQL session's replay lays its statements on its timeline, each with its text, parameters and outcome", () => {
  const session = { ...detail('', false), id: 'pgs_1', operation: 'sql.session', connection: 'billingdb', request: { method: 'Startup', path: '', headers: null, body: null, truncated: false, promptText: null }, chunkTimings: [], ttfbMs: null, errorCode: 'credential_revoked', durationMs: 3198 } as ExchangeDetail;
  const at = Date.parse(session.startedAt);
  const statement = (id: string, offset: number, extra: Partial<SessionStatement>): SessionStatement => ({ id, startedAt: at + offset, operation: 'sql.select', decision: 'allow', rules: ['connection-access:billingdb'], durationMs: 3, errorCode: null, sql: 'select email from customers where id = $1', params: ['7'], command: 'SELECT 1', rows: 1, stopped: false, ...extra });
  const lines = replayLines(session, [statement('ex_a', 12, {}), statement('ex_b', 3050, { operation: 'sql.drop', decision: 'deny', rules: ['no-drop'], sql: 'drop table customers', params: undefined, command: undefined, rows: 0, errorCode: 'policy_denied' })]);
  assert.deepEqual(lines.slice(2), [
    '        +12ms  ex_a  sql.select  allow  SELECT 1 (1 rows)  3 ms',
    '                select email from customers where id = $1   params ["7"]',
    '        +3050ms  ex_b  sql.drop  deny (no-drop)  error policy_denied  3 ms',
    '                drop table customers',
    '        +3198ms  complete (credential_revoked), 12 B out',
  ]);
});
