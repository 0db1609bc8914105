import { Router } from 'express';
import type { ApiDeps } from '../deps.ts';
import { parseRequest } from '../parse-request.ts';
import {
  healthcheckQuerySchema,
  runnerParamsSchema,
  type HealthcheckReport,
  type TerminateResult,
} from '../schemas.ts';

export function runnersRouter(deps: Pick<ApiDeps, 'maintenance'>): Router {
  const router = Router();
  // Runner ids hold a colon (`local:docker`); clients encode it, express decodes the parameter.
  router.post('/runners/:id/healthcheck', async (request, response) => {
    const { id } = parseRequest(runnerParamsSchema, request.params, 'path');
    const { fix } = parseRequest(healthcheckQuerySchema, request.query, 'query');
    const report: HealthcheckReport = await deps.maintenance.healthcheck(id, fix === 'true' || fix === '1');
    response.json(report);
  });
  router.post('/runners/:id/terminate', async (request, response) => {
    const { id } = parseRequest(runnerParamsSchema, request.params, 'path');
    const result: TerminateResult = await deps.maintenance.terminate(id);
    response.json(result);
  });
  return router;
}
