import { Router, type RequestHandler } from 'express';
import type { ApiDeps } from '../deps.ts';
import { parseRequest } from '../parse-request.ts';
import { gcQuerySchema, type GcReport } from '../schemas.ts';

/**
 * Who may collect: everyone the token check let through, for now. With users and roles this becomes the
 * admin check (one line); listing (`dry_run=true`) removes nothing, but what it shows spans every user.
 */
const mayCollect: RequestHandler = (_request, _response, next) => next();

/** `POST /gc[?dry_run=true]`: what `testground gc` asks for. */
export function gcRouter(deps: Required<Pick<ApiDeps, 'retention'>>): Router {
  const router = Router();
  router.post('/gc', mayCollect, async (request, response) => {
    const query = parseRequest(gcQuerySchema, request.query, 'query');
    const report: GcReport = await deps.retention.collect({
      dryRun: query.dry_run === 'true' || query.dry_run === '1',
    });
    response.json(report);
  });
  return router;
}
