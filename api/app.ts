import { existsSync } from 'node:fs';
import path from 'node:path';
import express, { type Express } from 'express';
import { NotFoundError } from '../core/errors.ts';
import { authenticate, readOnlyForViewers } from './auth.ts';
import type { ApiDeps } from './deps.ts';
import { errorHandler } from './error-handler.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { buildPurgeRouter } from './routes/build-purge.ts';
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
  if (deps.buildCaches) api.use(buildPurgeRouter({ buildCaches: deps.buildCaches }));
  app.use('/api/v1', api);
  app.use(dashboard());
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

/** Where `npm run build:web` puts the dashboard. */
export const dashboardDir = path.resolve(import.meta.dirname, '../web/dist');

/**
 * The dashboard's static files at `/`, same origin as the API. They hold no data (every page asks the API,
 * with the session's token), so they are served without authentication. Unbuilt, `/` says how to build it.
 */
function dashboard(): express.RequestHandler {
  const files = express.static(dashboardDir, { index: 'index.html', fallthrough: true, maxAge: 0 });
  return (request, response, next) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return next();
    if (request.path === '/' && !existsSync(path.join(dashboardDir, 'index.html'))) {
      response
        .status(503)
        .type('text/plain')
        .send(
          `the dashboard is not built: run "npm run build:web" (it writes ${dashboardDir}); the API is at /api/v1`,
        );
      return;
    }
    files(request, response, next);
  };
}
