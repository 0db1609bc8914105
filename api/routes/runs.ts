import { rm } from 'node:fs/promises';
import { Router, type Request, type RequestHandler } from 'express';
import multer from 'multer';
import { ConflictError, NotFoundError, ValidationError } from '../../core/errors.ts';
import { requester } from '../auth.ts';
import type { ApiDeps } from '../app.ts';

const maxCompositionBytes = 1024 * 1024;

export function runsRouter(deps: ApiDeps): Router {
  const router = Router();
  const upload = multer({
    dest: deps.uploadDir,
    limits: { fileSize: deps.maxUploadBytes, files: 1, fields: 4, fieldSize: maxCompositionBytes, parts: 6 },
  }).single('plan');

  router.post('/runs', requireMultipart, upload as RequestHandler, async (request, response) => {
    const archivePath = request.file?.path;
    try {
      const compositionText = readComposition(request);
      if (!archivePath) {
        throw new ValidationError('the "plan" file is missing: attach the plan directory as a .tar.gz', [
          { path: 'plan', message: 'required: a .tar.gz of the plan directory' },
        ]);
      }
      const task = await deps.tasks.submitRun({
        compositionText,
        archivePath,
        createdBy: requester(request.get('x-testground-user')),
      });
      response.status(202).json({
        task_id: task.id,
        run_id: task.runId,
        state: task.state,
        links: {
          task: `/api/v1/tasks/${task.id}`,
          logs: `/api/v1/tasks/${task.id}/logs?follow=true`,
          cancel: `/api/v1/tasks/${task.id}/cancel`,
          outputs: `/api/v1/runs/${task.runId}/outputs`,
        },
      });
    } finally {
      if (archivePath) await rm(archivePath, { force: true });
    }
  });

  router.get('/runs/:id/outputs', async (request, response) => {
    const task = await deps.tasks.get(request.params.id);
    if (task.state !== 'complete' && task.state !== 'canceled') {
      throw new ConflictError(`run ${task.id} is still ${task.state}; collect its outputs after it ends`);
    }
    if (!task.states.some((entry) => entry.state === 'running')) {
      throw new NotFoundError(
        `run ${task.id} has no outputs: it ended (${task.outcome ?? task.state}) before any instance started${task.error ? `: ${task.error}` : ''}`,
      );
    }
    response.type('application/gzip');
    response.attachment(`${task.runId}.tgz`);
    const archive = deps.outputs.archive(task.outputsDir, task.runId);
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

function readComposition(request: Request): string {
  const value: unknown = (request.body as Record<string, unknown> | undefined)?.composition;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ValidationError(
      'the "composition" field is missing: send the composition as TOML or JSON text',
      [{ path: 'composition', message: 'required: TOML or JSON text' }],
    );
  }
  return value;
}
