import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseByteSize, parseDuration } from '../../plan/units.ts';
import { ValidationError } from '../../core/errors.ts';

describe('parseDuration', () => {
  it('reads Go-style durations into milliseconds', () => {
    const cases: [string, number][] = [
      ['500ms', 500],
      ['30s', 30_000],
      ['10m', 600_000],
      ['1h30m', 5_400_000],
      ['1.5s', 1_500],
      ['1.1s', 1_100],
      ['1.005s', 1_005], // 1.005 * 1000 is 1004.9999999999999 in binary floating point
      ['.5s', 500],
      ['2h45m30.5s', 9_930_500],
      ['1500us', 1.5],
      ['1500µs', 1.5],
      ['2000000ns', 2],
      ['0s', 0],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text, 'x'), ms, text);
  });

  it('rejects bare numbers, saying what is accepted and naming the field', () => {
    assert.throws(
      () => parseDuration('10', 'run_config.timeout'),
      (err: unknown) => {
        assert.ok(err instanceof ValidationError);
        assert.match(
          err.message,
          /^run_config\.timeout: "10" is not a duration; use a number with a unit, like "90s" or "10m"/,
        );
        assert.deepEqual(
          err.details.map((d) => d.path),
          ['run_config.timeout'],
        );
        return true;
      },
    );
    assert.throws(
      () => parseDuration(600, 'run_config.timeout'),
      /run_config\.timeout: 600 is not a duration/,
    );
  });

  it('rejects everything else that is not a duration', () => {
    for (const bad of [
      '',
      ' 10s',
      '10s ',
      '10 s',
      '-5s',
      '+5s',
      '10sec',
      '1d',
      's',
      '1.5.5s',
      '10S',
      '1h 30m',
      'ten minutes',
    ]) {
      assert.throws(() => parseDuration(bad, 'x'), ValidationError, JSON.stringify(bad));
    }
  });
});

describe('parseByteSize', () => {
  it('reads binary units, decimal units and plain bytes', () => {
    const cases: [string | number, number][] = [
      ['512MiB', 512 * 1024 ** 2],
      ['1GiB', 1024 ** 3],
      ['1.5GiB', 1.5 * 1024 ** 3],
      ['64MB', 64_000_000],
      ['100k', 100_000],
      ['100Ki', 102_400],
      ['2 kib', 2_048],
      ['4096', 4_096],
      ['10B', 10],
      [123, 123],
      [0, 0],
    ];
    for (const [value, bytes] of cases) assert.equal(parseByteSize(value, 'x'), bytes, String(value));
  });

  it('rejects other text with the field, the value and examples', () => {
    assert.throws(
      () => parseByteSize('12 apples', 'groups[0].resources.memory'),
      /^ValidationError: groups\[0\]\.resources\.memory: "12 apples" is not a byte size; use a whole number of bytes or a number with a unit, like "512MiB"/,
    );
    for (const bad of ['', 'MiB', '-1', '1.5', '1.5B', '10 XB', '1e3']) {
      assert.throws(() => parseByteSize(bad, 'x'), ValidationError, JSON.stringify(bad));
    }
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => parseByteSize(bad, 'x'), ValidationError, String(bad));
    }
  });
});
