import { Router } from 'express';
import { principalOf, requireRole } from '../auth.ts';
import { ForbiddenError } from '../../core/errors.ts';
import type { ApiDeps } from '../deps.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
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
    const repair = fix === 'true' || fix === '1';
    const principal = principalOf(response);
    // Checking reads the host; repairing changes it (removes containers and networks), like terminate.
    if (repair && principal.role !== 'admin') {
      throw new ForbiddenError(
        `user ${JSON.stringify(principal.user)} has role ${principal.role}; a healthcheck with fix=true needs role admin (without fix it only checks)`,
        [{ path: 'fix', message: `fix=${fix} needs role admin` }],
      );
    }
    const report: HealthcheckReport = await deps.maintenance.healthcheck(id, repair);
    response.json(report);
  });
  router.all('/runners/:id/healthcheck', methodNotAllowed('POST'));
  // Terminating cancels every task of the runner, whoever created it.
  router.post('/runners/:id/terminate', requireRole('admin', 'terminate'), async (request, response) => {
    const { id } = parseRequest(runnerParamsSchema, request.params, 'path');
    const result: TerminateResult = await deps.maintenance.terminate(id);
    response.json(result);
  });
  router.all('/runners/:id/terminate', methodNotAllowed('POST'));
  return router;
}
