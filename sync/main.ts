import { syncServiceListeningLine } from '../core/contract/well-known.ts';
import { jsonLinesLogger } from './sync-logger.ts';
import { startSyncService } from './sync-service.ts';

/**
 * Runs a standalone sync service (`testground sync-service`) until SIGINT or SIGTERM, then closes it.
 * Prints one line saying where it listens; logs (JSON, level from `LOG_LEVEL`) go to stderr.
 */
export async function runSyncServiceCommand(options: { host: string; port: number }): Promise<void> {
  const logger = jsonLinesLogger(process.env.LOG_LEVEL || 'info', (line) => process.stderr.write(line));
  const service = await startSyncService({ host: options.host, port: options.port, logger });
  process.stdout.write(`${syncServiceListeningLine(service.host, service.port)}\n`);

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const onSignal = (received: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(received);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
  logger.info({ signal }, 'stopping the sync service');
  await service.close();
}
