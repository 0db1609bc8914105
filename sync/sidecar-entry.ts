// Entry of the sync-service sidecar container: the service on every interface of the run's network, at
// the port instances expect (CONTRACT §3).
import { runSyncServiceCommand } from './main.ts';

await runSyncServiceCommand({ host: '0.0.0.0', port: Number(process.env.SYNC_SERVICE_PORT ?? 5050) });
