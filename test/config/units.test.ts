import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatPath, parseDuration, parseIsoTime, parseSize } from '../../src/config/index.js';

describe('formatPath', () => {
  test('dotted keys and [index] for arrays, (root) for the empty path', () => {
    assert.equal(formatPath([]), '(root)');
    assert.equal(formatPath(['gateway']), 'gateway');
    assert.equal(formatPath(['connections', 1, 'target']), 'connections[1].target');
    assert.equal(formatPath(['connections', 0, 'access', 'groups', 2]), 'connections[0].access.groups[2]');
  });
});

describe('parseDuration', () => {
  const cases: ReadonlyArray<readonly [string | number, number | undefined]> = [
    ['250ms', 250],
    ['1.5s', 1500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['0s', 0],
    [' 10 s ', 10_000],
    ['10S', 10_000],
    ['1.0005s', 1001],
    [0, 0],
    [5000, 5000],
    [1.5, 1.5],
    ['-1', undefined],
    ['-1s', undefined],
    ['abc', undefined],
    ['', undefined],
    ['5 minutes', undefined],
    ['1e3ms', undefined],
    ['.5s', undefined],
    ['5', 5], // a bare number, even quoted, is milliseconds
    [-1, undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input) ?? String(input)} → ${String(expected)}`, () => {
      assert.equal(parseDuration(input), expected);
    });
  }
});

describe('parseIsoTime', () => {
  const cases: ReadonlyArray<readonly [string, string | undefined]> = [
    ['2026-11-23T10:00:00Z', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23T11:00:00+01:00', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23T10:00:00.250Z', '2026-11-23T10:00:00.250Z'],
    ['2026-11-23T10:00Z', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23 10:00:00Z', '2026-11-23T10:00:00.000Z'],
    ['2026-11-23', '2026-11-23T00:00:00.000Z'], // a date alone: midnight UTC
    ['20261123T164240Z', '2026-11-23T16:42:40.000Z'], // basic format
    ['20261123T164240+0100', '2026-11-23T15:42:40.000Z'],
    ['20261123', '2026-11-23T00:00:00.000Z'],
    ['Nov 23 2026', undefined], // Date.parse reads it, in a way that depends on the runtime
    ['2026-11-23T10:00:00 GMT', undefined],
    ['2026-13-01', undefined],
    // A day the month does not have is refused, not rolled over into the next month
    // (Date.parse reads 2026-02-30 as March 2: a prune --before it deleted two more days).
    ['2026-02-30T00:00:00Z', undefined],
    ['2026-02-29', undefined],
    ['2026-04-31T10:00:00Z', undefined],
    ['20260230T000000Z', undefined],
    ['2026-11-00', undefined],
    ['2028-02-29', '2028-02-29T00:00:00.000Z'], // a leap year
    ['2026-12-31T23:59:59Z', '2026-12-31T23:59:59.000Z'],
    ['2026-11-23T25:00Z', undefined],
    ['1700000000000', undefined],
    ['', undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input)} → ${String(expected)}`, () => {
      const time = parseIsoTime(input);
      assert.equal(time === undefined ? undefined : new Date(time).toISOString(), expected);
    });
  }
  test('a time without a zone is local time, as in JavaScript', () => {
    assert.equal(parseIsoTime('2026-11-23T10:00:00'), new Date(2026, 10, 23, 10, 0, 0).getTime());
  });
});

describe('parseSize', () => {
  const cases: ReadonlyArray<readonly [string | number, number | undefined]> = [
    ['10MiB', 10 * 1024 * 1024],
    ['512KiB', 512 * 1024],
    ['1GiB', 1024 ** 3],
    ['1MB', 1_000_000],
    ['1kb', 1000],
    ['2GB', 2_000_000_000],
    ['100b', 100],
    ['100', 100],
    ['1.5KiB', 1536],
    [' 10 mib ', 10 * 1024 * 1024],
    ['0', 0],
    [0, 0],
    [1024, 1024],
    [1.5, undefined],
    [-1, undefined],
    ['-1', undefined],
    ['abc', undefined],
    ['', undefined],
    ['10 megs', undefined],
    ['1TB', undefined],
    ['1e6', undefined],
    [Number.NaN, undefined],
    [Number.POSITIVE_INFINITY, undefined],
  ];
  for (const [input, expected] of cases) {
    test(`${JSON.stringify(input) ?? String(input)} → ${String(expected)}`, () => {
      assert.equal(parseSize(input), expected);
    });
  }
});
