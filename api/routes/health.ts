import { Router } from 'express';
import type { ApiDeps } from '../deps.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
import type { Health } from '../schemas.ts';

export function healthRouter(deps: Pick<ApiDeps, 'health'>): Router {
  const router = Router();
  router.get('/health', async (_request, response) => {
    const report: Health = await deps.health();
    response.status(report.ok ? 200 : 503).json(report);
  });
  router.all('/health', methodNotAllowed('GET'));
  return router;
}
