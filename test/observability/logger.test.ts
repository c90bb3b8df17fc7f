// The exchange log line: ids, names and numbers; an error's detail never carries the
// caller's input, which parsers quote in their messages.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Exchange, ExchangeOutcome } from '../../src/exchange/index.js';
import { exchangeLogFields } from '../../src/observability/index.js';
import { inspectSql } from '../../src/protocols/postgres/inspect-sql.js';
import { openaiFacts } from '../../src/protocols/http/openai-request.js';

const exchange: Exchange = { id: 'ex_1', sessionId: 'ex_1', protocol: 'postgres', connection: 'db', operation: 'sql.unparseable', startedAt: 0, client: { address: '127.0.0.1', userAgent: undefined }, facts: { stream: false } };
const outcome = (errorCode: string, errorDetail: string): ExchangeOutcome => ({ status: 400, complete: true, bytesIn: 0, bytesOut: 0, ttfbMs: undefined, durationMs: 1, errorCode, errorDetail });

describe('exchange log line', () => {
  test('security: a secret in SQL the parser refuses, or in a body that is not JSON, does not reach the log through the error detail', async () => {
    const sql = await inspectSql("alter user bob password 'S3cretPassw0rd-do-not-log");
    assert.equal(sql.ok, false);
    const sqlLine = JSON.stringify(exchangeLogFields(exchange, undefined, outcome('sql_unparseable', sql.ok ? '' : sql.error)));
    assert.doesNotMatch(sqlLine, /S3cret/);
    assert.match(sqlLine, /"detail":"unterminated quoted string at or near …"/);

    let detail = '';
    try {
      openaiFacts('chat.completions', Buffer.from('sk-proj-ABCDEFGH1234567890'));
    } catch (error) {
      detail = (error as { detail: string }).detail;
    }
    assert.match(detail, /sk-proj/, 'the detail itself quotes the body (it is kept in the record)');
    assert.doesNotMatch(JSON.stringify(exchangeLogFields({ ...exchange, protocol: 'http' }, undefined, outcome('invalid_request_body', detail))), /sk-proj/);
    // A detail without quotes is logged whole.
    assert.equal(exchangeLogFields(exchange, undefined, outcome('sql_error', '57014: canceling statement due to user request')).detail, '57014: canceling statement due to user request');
  });
});
