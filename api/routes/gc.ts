import { Router } from 'express';
import { requireRole } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
import { parseRequest } from '../parse-request.ts';
import { gcQuerySchema, type GcReport } from '../schemas.ts';

/**
 * `POST /gc[?dry_run=true]`: what `testground gc` asks for. Admins only: collecting removes every user's
 * outputs, and even a dry run lists what every user has.
 */
export function gcRouter(deps: Required<Pick<ApiDeps, 'retention'>>): Router {
  const router = Router();
  router.post('/gc', requireRole('admin', 'gc'), async (request, response) => {
    const query = parseRequest(gcQuerySchema, request.query, 'query');
    const report: GcReport = await deps.retention.collect({
      dryRun: query.dry_run === 'true' || query.dry_run === '1',
    });
    response.json(report);
  });
  router.all('/gc', methodNotAllowed('POST'));
  return router;
}
