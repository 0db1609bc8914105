import { Router } from 'express';
import type { ApiDeps } from '../app.ts';

export function runnersRouter(deps: ApiDeps): Router {
  const router = Router();
  // Runner ids hold a colon (`local:docker`); clients encode it, express decodes the parameter.
  router.post('/runners/:id/healthcheck', async (request, response) => {
    const fix = request.query.fix === 'true' || request.query.fix === '1';
    response.json(await deps.maintenance.healthcheck(request.params.id, fix));
  });
  router.post('/runners/:id/terminate', async (request, response) => {
    response.json(await deps.maintenance.terminate(request.params.id));
  });
  return router;
}
