// Entry of the bundled sync service the runners start: a process of its own for local:exec (so instance
// handshakes never wait behind the daemon's work), the sync service container for local:docker.
// SYNC_SERVICE_HOST / SYNC_SERVICE_PORT choose where it listens (port 0: any free port; it prints which).
import { defaultSyncServicePort } from '../core/contract/instance-env.ts';
import { runSyncServiceCommand } from './main.ts';

await runSyncServiceCommand({
  host: process.env.SYNC_SERVICE_HOST ?? '0.0.0.0',
  port: Number(process.env.SYNC_SERVICE_PORT ?? defaultSyncServicePort),
});
