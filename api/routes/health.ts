import { Router } from 'express';
import type { ApiDeps } from '../app.ts';

export function healthRouter(deps: ApiDeps): Router {
  const router = Router();
  router.get('/health', async (_request, response) => {
    const report = await deps.health();
    response.status(report.ok ? 200 : 503).json(report);
  });
  return router;
}
