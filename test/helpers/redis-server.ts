import { pino } from 'pino';
import { Redis } from 'ioredis';
import { startEmbeddedRedis, type EmbeddedRedis } from '../../daemon/embedded-redis.ts';
import { scratchDir } from './processes.ts';

/** A real redis-server of the test's own on a unix socket, with a client. */
export async function startTestRedis(): Promise<{
  server: EmbeddedRedis;
  client: Redis;
  close: () => Promise<void>;
}> {
  const scratch = await scratchDir('redis');
  const server = await startEmbeddedRedis(scratch.dir, pino({ level: 'silent' }));
  const client = new Redis({ path: server.socketPath, maxRetriesPerRequest: null });
  return {
    server,
    client,
    close: async () => {
      client.disconnect();
      await server.stop();
      await scratch.remove();
    },
  };
}
