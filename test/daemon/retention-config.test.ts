/** The retention and quota knobs of `loadDaemonConfig`: defaults, `off`, and errors naming the variable. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDaemonConfig } from '../../daemon/config.ts';
import { ValidationError } from '../../core/errors.ts';

const load = (env: Record<string, string>) => loadDaemonConfig(env, { home: '/tmp/tg-config-test' });

describe('retention and quota configuration', () => {
  it('keeps outputs and bundles 30 days, snapshots 7, with no size limits and queue limits on, by default', () => {
    const config = load({});
    assert.deepEqual(config.retention, {
      outputs: { maxAgeMs: 720 * 3_600_000 },
      snapshots: { maxAgeMs: 168 * 3_600_000 },
      cache: { maxAgeMs: 720 * 3_600_000 },
      images: { maxAgeMs: 720 * 3_600_000 },
    });
    assert.equal(config.gcIntervalMs, 600_000);
    assert.equal(config.maxActivePerUser, 200);
    assert.equal(config.maxActive, 1000);
    assert.equal(config.uploadQuotaBytes, undefined);
    assert.equal(config.uploadQuotaWindowMs, 24 * 3_600_000);
  });

  it('reads ages, sizes, the home limit, the interval and the quotas; off turns a limit off', () => {
    const config = load({
      TESTGROUND_RETAIN_OUTPUTS_AGE: '1h',
      TESTGROUND_RETAIN_OUTPUTS_SIZE: '10GiB',
      TESTGROUND_RETAIN_SNAPSHOTS_AGE: 'off',
      TESTGROUND_RETAIN_CACHE_SIZE: '2GB',
      TESTGROUND_RETAIN_HOME_SIZE: '50GiB',
      TESTGROUND_GC_INTERVAL: 'off',
      TESTGROUND_MAX_ACTIVE_PER_USER: '5',
      TESTGROUND_MAX_ACTIVE: '0',
      TESTGROUND_UPLOAD_QUOTA: '1GiB',
      TESTGROUND_UPLOAD_QUOTA_WINDOW: '1h',
    });
    assert.deepEqual(config.retention.outputs, { maxAgeMs: 3_600_000, maxBytes: 10 * 2 ** 30 });
    assert.deepEqual(config.retention.snapshots, {});
    assert.deepEqual(config.retention.cache, { maxAgeMs: 720 * 3_600_000, maxBytes: 2e9 });
    assert.equal(config.retention.homeMaxBytes, 50 * 2 ** 30);
    assert.equal(config.gcIntervalMs, 0);
    assert.equal(config.maxActivePerUser, 5);
    assert.equal(config.maxActive, 0);
    assert.equal(config.uploadQuotaBytes, 2 ** 30);
    assert.equal(config.uploadQuotaWindowMs, 3_600_000);
  });

  it('names the variable and the value when one is wrong', () => {
    assert.throws(
      () => load({ TESTGROUND_RETAIN_CACHE_AGE: '30d' }),
      (error: Error) => {
        assert.ok(error instanceof ValidationError);
        assert.match(error.message, /TESTGROUND_RETAIN_CACHE_AGE: "30d" is not a duration/);
        return true;
      },
    );
    assert.throws(
      () => load({ TESTGROUND_UPLOAD_QUOTA: 'lots' }),
      /TESTGROUND_UPLOAD_QUOTA: "lots" is not a byte size/,
    );
    assert.throws(() => load({ TESTGROUND_MAX_ACTIVE: '-1' }), /TESTGROUND_MAX_ACTIVE "-1"/);
  });
});
