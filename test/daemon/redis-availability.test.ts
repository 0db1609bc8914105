import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RedisUnavailableError } from '../../core/errors.ts';
import { RedisAvailability } from '../../daemon/redis-availability.ts';

describe('RedisAvailability', () => {
  it('refuses at once while the request client is not connected, naming its state', () => {
    const client = { status: 'reconnecting' };
    const availability = new RedisAvailability(client as never, 1_500);
    assert.throws(
      () => availability.assertAvailable(),
      (error: unknown) =>
        error instanceof RedisUnavailableError &&
        error.code === 'redis_unavailable' &&
        /Redis is unavailable \(connection reconnecting\)/.test(error.message),
    );
    client.status = 'ready';
    availability.assertAvailable();
  });

  it("reads ioredis' errors of an absent Redis as redis_unavailable, and nothing else", () => {
    const availability = new RedisAvailability({ status: 'ready' } as never, 1_500);
    const named = (name: string, message: string): Error => Object.assign(new Error(message), { name });
    for (const error of [
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('Connection is closed.'),
      named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 0).'),
      named('ReplyError', 'LOADING Redis is loading the dataset in memory'),
    ]) {
      assert.equal(availability.explain(error)?.code, 'redis_unavailable', error.message);
    }
    assert.match(
      availability.explain(new Error('Command timed out'))?.message ?? '',
      /no answer within 1500 ms \(TESTGROUND_REDIS_COMMAND_TIMEOUT\)/,
    );
    for (const error of [
      Object.assign(new Error('ENOENT: no such file or directory, open /outputs/x'), { code: 'ENOENT' }),
      named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value'),
      'Connection is closed.',
    ]) {
      assert.equal(availability.explain(error), undefined, String(error));
    }
  });
});
