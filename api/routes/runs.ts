import { rm } from 'node:fs/promises';
import { Router } from 'express';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import { isRunEnded, isTerminal, type RunRecord, type TaskRecord } from '../../core/task.ts';
import { principalOf } from '../auth.ts';
import { metadataOf } from '../submission-metadata.ts';
import type { ApiDeps } from '../deps.ts';
import { parseRequest } from '../parse-request.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
import { planUpload, uploadedArchive } from '../plan-upload.ts';
import {
  runMetricsQuerySchema,
  runParamsSchema,
  runSubmissionFieldsSchema,
  type RunMetrics,
  type Submitted,
} from '../schemas.ts';
import { submittedView } from '../task-view.ts';

export function runsRouter(
  deps: Pick<ApiDeps, 'tasks' | 'outputs' | 'uploadDir' | 'maxUploadBytes' | 'logger'>,
): Router {
  const router = Router();

  router.post('/runs', ...planUpload(deps, '/runs'), async (request, response) => {
    const archivePath = request.file?.path;
    const principal = principalOf(response);
    try {
      const fields = parseRequest(runSubmissionFieldsSchema, request.body ?? {}, 'multipart field');
      const task = await deps.tasks.submitRun({
        compositionText: fields.composition,
        archivePath: uploadedArchive(request),
        createdBy: principal.user,
        ...(fields.run_ids === undefined ? {} : { runIds: fields.run_ids.split(',') }),
        metadata: metadataOf(fields),
        supersede: fields.supersede === 'true',
        supersedeOthers: principal.role === 'admin',
      });
      const submitted: Submitted = submittedView(task);
      response.status(202).json(submitted);
    } finally {
      if (archivePath) await rm(archivePath, { force: true });
    }
  });
  router.all('/runs', methodNotAllowed('POST'));

  router.get('/runs/:id/outputs', async (request, response) => {
    const { id } = parseRequest(runParamsSchema, request.params, 'path');
    const runs = await runsToCollect(deps, id);
    const archive = await deps.outputs.archive(runs.map((run) => ({ runId: run.id, dir: run.outputsDir })));
    // attachment() sets a type from the file name (octet-stream for .tgz): the declared one comes after.
    response.attachment(`${id}.tgz`);
    response.type('application/gzip');
    archive.on('error', (error) => {
      deps.logger.error({ err: error, runId: id }, 'streaming outputs failed');
      response.destroy(error);
    });
    archive.pipe(response);
  });
  router.all('/runs/:id/outputs', methodNotAllowed('GET'));

  router.get('/runs/:id/metrics', async (request, response) => {
    const { id } = parseRequest(runParamsSchema, request.params, 'path');
    const { raw } = parseRequest(runMetricsQuerySchema, request.query, 'query');
    const runs = await runsToCollect(deps, id);
    if (runs.length !== 1 || runs[0]?.id !== id) {
      throw new NotFoundError(
        `task ${id} has several runs; ask for the metrics of one: ${runs.map((run) => run.id).join(', ')}`,
        [{ path: 'id', message: `${JSON.stringify(id)} names a task of several runs, not one run` }],
      );
    }
    const run = runs[0];
    const body: RunMetrics = {
      run_id: run.id,
      task_id: id.split('-')[0] ?? id,
      groups: run.result?.metrics ?? {},
    };
    if (raw === 'true' || raw === '1') body.points = await deps.outputs.metricPoints(run.id, run.outputsDir);
    response.json(body);
  });
  router.all('/runs/:id/metrics', methodNotAllowed('GET'));

  return router;
}

/**
 * The runs whose outputs `id` names: one run by its run id (once it has ended, even while later runs go
 * on), or every run of a task by the task id (once the task has ended). A task without [[runs]] has one
 * run whose id is the task id, so both readings agree.
 */
async function runsToCollect(deps: Pick<ApiDeps, 'tasks'>, id: string): Promise<RunRecord[]> {
  const dash = id.indexOf('-');
  const task = await deps.tasks.get(dash === -1 ? id : id.slice(0, dash));
  if (task.type === 'build') {
    throw new NotFoundError(
      `task ${task.id} is a build: it has no outputs; its artifacts are listed on GET /api/v1/tasks/${task.id}`,
    );
  }
  if (dash === -1) {
    if (!isTerminal(task.state)) {
      throw new ConflictError(`run ${id} is still ${task.state}; collect its outputs after it ends`);
    }
    const started = task.runs.filter((run) => run.startedAt !== undefined);
    if (started.length === 0) throw noOutputs(id, task);
    return started;
  }
  const run = task.runs.find((candidate) => candidate.id === id);
  if (!run) {
    throw new NotFoundError(
      `task ${task.id} has no run ${id}; its runs: ${task.runs.map((candidate) => candidate.id).join(', ')}`,
      [{ path: 'id', message: `${JSON.stringify(id)} is not a run of task ${task.id}` }],
    );
  }
  if (!isRunEnded(run.state)) {
    throw new ConflictError(`run ${id} is still ${run.state}; collect its outputs after it ends`);
  }
  if (run.startedAt === undefined) throw noOutputs(id, run);
  return [run];
}

function noOutputs(id: string, ended: Pick<TaskRecord | RunRecord, 'outcome' | 'error'>): NotFoundError {
  return new NotFoundError(
    `run ${id} has no outputs: it ended (${ended.outcome ?? 'canceled'}) before any instance started${ended.error ? `: ${ended.error}` : ''}`,
  );
}
