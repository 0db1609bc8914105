import { Router } from 'express';
import { requireRole } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
import { parseRequest } from '../parse-request.ts';
import { buildPurgeQuerySchema, builderParamsSchema, type BuildPurgeReport } from '../schemas.ts';

/**
 * `POST /builders/{id}/purge?plan=<name>`: what `testground build purge` asks for. Users may: it removes
 * only caches, never what a queued or running task needs, and the next build makes them again.
 */
export function buildPurgeRouter(deps: Required<Pick<ApiDeps, 'buildCaches'>>): Router {
  const router = Router();
  // Builder ids hold a colon (`exec:node`); clients encode it, express decodes the parameter.
  router.post('/builders/:id/purge', requireRole('user', 'build purge'), async (request, response) => {
    const { id } = parseRequest(builderParamsSchema, request.params, 'path');
    const { plan } = parseRequest(buildPurgeQuerySchema, request.query, 'query');
    const report: BuildPurgeReport = await deps.buildCaches.purge({ builder: id, plan });
    response.json(report);
  });
  router.all('/builders/:id/purge', methodNotAllowed('POST'));
  return router;
}
