import { rm } from 'node:fs/promises';
import { Router } from 'express';
import { principalOf } from '../auth.ts';
import { metadataOf } from '../submission-metadata.ts';
import type { ApiDeps } from '../deps.ts';
import { parseRequest } from '../parse-request.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
import { planUpload, uploadedArchive } from '../plan-upload.ts';
import { buildSubmissionFieldsSchema, type Submitted } from '../schemas.ts';
import { submittedView } from '../task-view.ts';

/** `POST /builds`: a task that builds a composition's groups and lists their artifacts, without running. */
export function buildsRouter(
  deps: Pick<ApiDeps, 'tasks' | 'uploadDir' | 'maxUploadBytes' | 'logger'>,
): Router {
  const router = Router();

  router.post('/builds', ...planUpload(deps, '/builds'), async (request, response) => {
    const archivePath = request.file?.path;
    const principal = principalOf(response);
    try {
      const fields = parseRequest(buildSubmissionFieldsSchema, request.body ?? {}, 'multipart field');
      const task = await deps.tasks.submitBuild({
        compositionText: fields.composition,
        archivePath: uploadedArchive(request),
        createdBy: principal.user,
        metadata: metadataOf(fields),
      });
      const submitted: Submitted = submittedView(task);
      response.status(202).json(submitted);
    } finally {
      if (archivePath) await rm(archivePath, { force: true });
    }
  });
  router.all('/builds', methodNotAllowed('POST'));

  return router;
}
