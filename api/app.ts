import express, { type Express } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { NotFoundError } from '../core/errors.ts';
import type { LogBus } from '../daemon/log-bus.ts';
import type { OutputsStore } from '../daemon/outputs-store.ts';
import type { RunnerMaintenance } from '../daemon/runner-maintenance.ts';
import type { TaskService } from '../daemon/task-service.ts';
import type { TaskStore } from '../daemon/task-store.ts';
import { requireToken } from './auth.ts';
import { errorHandler } from './error-handler.ts';
import { openApiDocument } from './openapi.ts';
import { healthRouter } from './routes/health.ts';
import { runnersRouter } from './routes/runners.ts';
import { runsRouter } from './routes/runs.ts';
import { tasksRouter } from './routes/tasks.ts';

export interface HealthReport {
  ok: boolean;
  checks: Record<string, { ok: boolean; message: string }>;
  version: string;
}

export interface ApiDeps {
  tasks: TaskService;
  maintenance: RunnerMaintenance;
  store: TaskStore;
  logBus: LogBus;
  outputs: OutputsStore;
  /** A Redis connection of its own for one follower's blocking reads; the route disconnects it. */
  openLogReader: () => Redis;
  health: () => Promise<HealthReport>;
  token?: string;
  uploadDir: string;
  maxUploadBytes: number;
  logger: Logger;
}

/** Builds the HTTP API; it never listens (the daemon's `main.ts` does), so tests can drive it directly. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const api = express.Router();
  api.get('/openapi.json', (_request, response) => {
    response.json(openApiDocument);
  });
  api.use(healthRouter(deps));
  api.use(requireToken(deps.token));
  api.use(runsRouter(deps));
  api.use(tasksRouter(deps));
  api.use(runnersRouter(deps));
  app.use('/api/v1', api);
  app.use((request, _response, next) => {
    next(
      new NotFoundError(
        `no route ${request.method} ${request.path}; the API lives under /api/v1 (see /api/v1/openapi.json)`,
      ),
    );
  });
  app.use(errorHandler(deps.logger, deps.maxUploadBytes));
  return app;
}
