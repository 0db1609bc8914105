import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDaemonConfig } from '../../daemon/config.ts';

describe('the daemon configuration of instance output', () => {
  it('defaults to a 256 MiB disk quota and live-log budgets of 4 MiB per instance and 32 MiB per task', () => {
    const config = loadDaemonConfig({}, { home: '/tmp/tg-config-test' });
    assert.equal(config.outputQuotaBytes, 256 * 1024 * 1024);
    assert.equal(config.liveLogInstanceBytes, 4 * 1024 * 1024);
    assert.equal(config.liveLogTaskBytes, 32 * 1024 * 1024);
  });

  it('reads them from the environment as byte sizes', () => {
    const config = loadDaemonConfig(
      {
        TESTGROUND_OUTPUT_QUOTA: '1GiB',
        TESTGROUND_LIVE_LOG_INSTANCE_BUDGET: '64KiB',
        TESTGROUND_LIVE_LOG_TASK_BUDGET: '1MiB',
      },
      { home: '/tmp/tg-config-test' },
    );
    assert.equal(config.outputQuotaBytes, 1024 ** 3);
    assert.equal(config.liveLogInstanceBytes, 64 * 1024);
    assert.equal(config.liveLogTaskBytes, 1024 * 1024);
  });

  it('names the variable and the value it refuses', () => {
    assert.throws(
      () => loadDaemonConfig({ TESTGROUND_OUTPUT_QUOTA: 'lots' }, { home: '/tmp/tg-config-test' }),
      /TESTGROUND_OUTPUT_QUOTA.*lots/,
    );
    assert.throws(
      () => loadDaemonConfig({ TESTGROUND_LIVE_LOG_TASK_BUDGET: '10' }, { home: '/tmp/tg-config-test' }),
      /TESTGROUND_LIVE_LOG_TASK_BUDGET "?10"?: at least 1KiB/,
    );
  });
});
