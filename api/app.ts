import express, { type Express } from 'express';
import { NotFoundError } from '../core/errors.ts';
import { authenticate, readOnlyForViewers } from './auth.ts';
import type { ApiDeps } from './deps.ts';
import { errorHandler } from './error-handler.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { buildsRouter } from './routes/builds.ts';
import { gcRouter } from './routes/gc.ts';
import { healthRouter } from './routes/health.ts';
import { methodNotAllowed } from './method-not-allowed.ts';
import { runnersRouter } from './routes/runners.ts';
import { runsRouter } from './routes/runs.ts';
import { tasksRouter } from './routes/tasks.ts';

/** Builds the HTTP API; it never listens (the daemon's `main.ts` does), so tests can drive it directly. */
export function createApp(deps: ApiDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  const openApiDocument = buildOpenApiDocument();
  const api = express.Router();
  api.get('/openapi.json', (_request, response) => {
    response.json(openApiDocument);
  });
  api.all('/openapi.json', methodNotAllowed('GET'));
  api.use(healthRouter(deps));
  api.use(authenticate(deps.auth));
  api.use(readOnlyForViewers());
  api.use((_request, _response, next) => {
    deps.redis?.assertAvailable();
    next();
  });
  api.use(runsRouter(deps));
  api.use(buildsRouter(deps));
  api.use(tasksRouter(deps));
  api.use(runnersRouter(deps));
  if (deps.retention) api.use(gcRouter({ retention: deps.retention }));
  app.use('/api/v1', api);
  app.use((request, _response, next) => {
    next(
      new NotFoundError(
        `no route ${request.method} ${request.path}; the API lives under /api/v1 (see /api/v1/openapi.json)`,
      ),
    );
  });
  app.use(errorHandler(deps.logger, deps.maxUploadBytes, deps.redis));
  return app;
}
