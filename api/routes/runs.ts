import { rm } from 'node:fs/promises';
import { Router, type RequestHandler } from 'express';
import multer from 'multer';
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { requester } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { parseRequest } from '../parse-request.ts';
import {
  maxCompositionBytes,
  runSubmissionFieldsSchema,
  taskParamsSchema,
  type Submitted,
} from '../schemas.ts';

export function runsRouter(
  deps: Pick<ApiDeps, 'tasks' | 'outputs' | 'uploadDir' | 'maxUploadBytes' | 'logger'>,
): Router {
  const router = Router();
  const upload = multer({
    dest: deps.uploadDir,
    limits: { fileSize: deps.maxUploadBytes, files: 1, fields: 4, fieldSize: maxCompositionBytes, parts: 6 },
  }).single('plan');

  router.post('/runs', requireMultipart, upload as RequestHandler, async (request, response) => {
    const archivePath = request.file?.path;
    try {
      const { composition } = parseRequest(runSubmissionFieldsSchema, request.body ?? {}, 'multipart field');
      if (!archivePath) {
        throw new ValidationError('the "plan" file is missing: attach the plan directory as a .tar.gz', [
          { path: 'plan', message: 'required: a .tar.gz of the plan directory' },
        ]);
      }
      const task = await deps.tasks.submitRun({
        compositionText: composition,
        archivePath,
        createdBy: requester(request.get('x-testground-user')),
      });
      const submitted: Submitted = {
        task_id: task.id,
        run_id: task.runId,
        state: task.state,
        links: {
          task: `/api/v1/tasks/${task.id}`,
          logs: `/api/v1/tasks/${task.id}/logs?follow=true`,
          cancel: `/api/v1/tasks/${task.id}/cancel`,
          outputs: `/api/v1/runs/${task.runId}/outputs`,
        },
      };
      response.status(202).json(submitted);
    } finally {
      if (archivePath) await rm(archivePath, { force: true });
    }
  });

  router.get('/runs/:id/outputs', async (request, response) => {
    const { id } = parseRequest(taskParamsSchema, request.params, 'path');
    const task = await deps.tasks.get(id);
    if (task.state !== 'complete' && task.state !== 'canceled') {
      throw new ConflictError(`run ${task.id} is still ${task.state}; collect its outputs after it ends`);
    }
    if (!task.states.some((entry) => entry.state === 'running')) {
      throw new NotFoundError(
        `run ${task.id} has no outputs: it ended (${task.outcome ?? task.state}) before any instance started${task.error ? `: ${task.error}` : ''}`,
      );
    }
    const archive = await deps.outputs.archive(task.outputsDir, task.runId);
    // attachment() sets a type from the file name (octet-stream for .tgz): the declared one comes after.
    response.attachment(`${task.runId}.tgz`);
    response.type('application/gzip');
    archive.on('error', (error) => {
      deps.logger.error({ err: error, runId: task.runId }, 'streaming outputs failed');
      response.destroy(error);
    });
    archive.pipe(response);
  });

  return router;
}

const requireMultipart: RequestHandler = (request, _response, next) => {
  if (request.is('multipart/form-data')) return next();
  next(
    new ValidationError(
      'POST /api/v1/runs takes multipart/form-data with a "composition" field (TOML or JSON) and a "plan" file (.tar.gz)',
      [
        {
          path: 'content-type',
          message: `${JSON.stringify(request.get('content-type') ?? '')} is not multipart/form-data`,
        },
      ],
    ),
  );
};
