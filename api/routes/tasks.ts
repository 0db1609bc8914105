import { Router } from 'express';
import { z } from 'zod';
import { ValidationError } from '../../core/errors.ts';
import { logStart } from '../../daemon/log-bus.ts';
import { taskView } from '../task-view.ts';
import type { ApiDeps } from '../app.ts';
import { isTerminal, taskStates } from '../../core/task.ts';

const listQuery = z.object({
  state: z.enum(taskStates).optional(),
  plan: z.string().min(1).max(200).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(50),
});

const logsQuery = z.object({
  follow: z.enum(['true', 'false', '1', '0']).default('false'),
  offset: z
    .string()
    .regex(/^\d+(-\d+)?$/, 'an offset from a previous line of this log, like "1700000000000-0"')
    .default(logStart),
});

// Short enough to notice a client that went away, long enough to cost nothing while idle.
const followBlockMs = 2_000;

export function tasksRouter(deps: ApiDeps): Router {
  const router = Router();

  router.get('/tasks', async (request, response) => {
    const query = parseQuery(listQuery, request.query);
    const tasks = await deps.store.list({
      limit: query.limit,
      ...(query.state ? { state: query.state } : {}),
      ...(query.plan ? { plan: query.plan } : {}),
    });
    response.json({ tasks: tasks.map(taskView) });
  });

  router.get('/tasks/:id', async (request, response) => {
    response.json(taskView(await deps.tasks.get(request.params.id)));
  });

  router.post('/tasks/:id/cancel', async (request, response) => {
    response.json(taskView(await deps.tasks.cancel(request.params.id)));
  });

  router.get('/tasks/:id/logs', async (request, response) => {
    const query = parseQuery(logsQuery, request.query);
    const task = await deps.tasks.get(request.params.id);
    const follow = query.follow === 'true' || query.follow === '1';
    response.status(200).type('application/x-ndjson');
    response.setHeader('cache-control', 'no-cache');
    response.flushHeaders();

    let offset = query.offset;
    let clientGone = false;
    const reader = follow ? deps.openLogReader() : undefined;
    response.on('close', () => {
      clientGone = true;
      reader?.disconnect();
    });
    try {
      let ended = false;
      while (!clientGone) {
        const entries = await deps.logBus.read(
          task.id,
          offset,
          follow ? { blockMs: followBlockMs, ...(reader ? { reader } : {}) } : {},
        );
        for (const entry of entries) {
          response.write(`${JSON.stringify(entry)}\n`);
          offset = entry.offset;
          if (entry.kind === 'end') ended = true;
        }
        if (ended || (!follow && entries.length === 0)) break;
        // The end entry may have aged out of a very long log: the record is the authority.
        if (follow && entries.length === 0 && isTerminal((await deps.tasks.get(task.id)).state)) break;
      }
    } catch (error) {
      if (!clientGone) deps.logger.warn({ err: error, taskId: task.id }, 'log stream ended by an error');
    } finally {
      reader?.disconnect();
      response.end();
    }
  });

  return router;
}

function parseQuery<T extends z.ZodType>(schema: T, query: unknown): z.infer<T> {
  const parsed = schema.safeParse(query);
  if (parsed.success) return parsed.data;
  const details = parsed.error.issues.map((issue) => {
    const key = issue.path.join('.');
    const value = (query as Record<string, unknown>)[key];
    return { path: key, message: `${JSON.stringify(value)}: ${issue.message}` };
  });
  throw new ValidationError(
    `invalid query: ${details.map((d) => `${d.path} ${d.message}`).join('; ')}`,
    details,
  );
}
