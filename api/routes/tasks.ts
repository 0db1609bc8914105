import { once } from 'node:events';
import { Router } from 'express';
import { SingleFlight } from '../../core/single-flight.ts';
import { isTerminal } from '../../core/task.ts';
import { assertMayCancel, principalOf } from '../auth.ts';
import type { ApiDeps } from '../deps.ts';
import { methodNotAllowed } from '../method-not-allowed.ts';
import { parseRequest } from '../parse-request.ts';
import {
  taskListQuerySchema,
  taskLogsQuerySchema,
  taskParamsSchema,
  taskReportQuerySchema,
  type LogLine,
  type TaskList,
  type TaskView,
} from '../schemas.ts';
import { taskSummaryView, taskView } from '../task-view.ts';

export function tasksRouter(
  deps: Pick<ApiDeps, 'tasks' | 'taskList' | 'logs' | 'reports' | 'logger'>,
): Router {
  const router = Router();
  // Identical listings asked while one is being read (many clients polling the same page) share that one
  // Redis round trip and its serialization; nothing is kept once it is answered.
  const pages = new SingleFlight<string>();

  router.get('/tasks', async (request, response) => {
    const query = parseRequest(taskListQuerySchema, request.query, 'query');
    const body = await pages.run(JSON.stringify(query), async () => {
      const page = await deps.taskList.summaries({
        limit: query.limit,
        ...(query.state ? { state: query.state } : {}),
        ...(query.plan ? { plan: query.plan } : {}),
        ...(query.cursor ? { cursor: query.cursor } : {}),
      });
      const list: TaskList = { tasks: page.tasks.map(taskSummaryView), next_cursor: page.next ?? null };
      return JSON.stringify(list);
    });
    response.type('json').send(body);
  });
  router.all('/tasks', methodNotAllowed('GET'));

  router.get('/tasks/:id', async (request, response) => {
    const { id } = parseRequest(taskParamsSchema, request.params, 'path');
    const view: TaskView = taskView(await deps.tasks.get(id));
    response.json(view);
  });
  router.all('/tasks/:id', methodNotAllowed('GET'));

  router.post('/tasks/:id/cancel', async (request, response) => {
    const { id } = parseRequest(taskParamsSchema, request.params, 'path');
    assertMayCancel(principalOf(response), await deps.tasks.get(id));
    const view: TaskView = taskView(await deps.tasks.cancel(id));
    response.json(view);
  });
  router.all('/tasks/:id/cancel', methodNotAllowed('POST'));

  router.get('/tasks/:id/report', async (request, response) => {
    const { id } = parseRequest(taskParamsSchema, request.params, 'path');
    const { format } = parseRequest(taskReportQuerySchema, request.query, 'query');
    const report = await deps.reports.render(id, format);
    response.status(200).type(report.contentType).send(report.body);
  });
  router.all('/tasks/:id/report', methodNotAllowed('GET'));

  router.get('/tasks/:id/logs', async (request, response) => {
    const { id } = parseRequest(taskParamsSchema, request.params, 'path');
    const query = parseRequest(taskLogsQuerySchema, request.query, 'query');
    const task = await deps.tasks.get(id);
    response.status(200).type('application/x-ndjson');
    response.setHeader('cache-control', 'no-cache');
    response.flushHeaders();

    const clientGone = new AbortController();
    response.on('close', () => clientGone.abort());
    const lines =
      query.follow === 'true' || query.follow === '1'
        ? deps.logs.follow(task.id, query.offset, {
            signal: clientGone.signal,
            hasEnded: async () => isTerminal((await deps.tasks.get(task.id)).state),
          })
        : deps.logs.history(task.id, query.offset);
    try {
      for await (const entry of lines) {
        const line: LogLine = entry;
        if (!response.write(`${JSON.stringify(line)}\n`)) {
          await once(response, 'drain', { signal: clientGone.signal });
        }
      }
    } catch (error) {
      // The status is sent already: all that is left is to end the stream, which the client resumes.
      if (!clientGone.signal.aborted)
        deps.logger.warn({ err: error, taskId: task.id }, 'log stream ended by an error');
    } finally {
      response.end();
    }
  });
  router.all('/tasks/:id/logs', methodNotAllowed('GET'));

  return router;
}
