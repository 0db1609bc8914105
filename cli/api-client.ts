import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type {
  BuildPurgeReport,
  ErrorBody,
  GcReport,
  ReportFormat,
  HealthcheckReport,
  LogLine,
  ProblemDetailView,
  Submitted,
  TaskList,
  TaskView,
  TerminateResult,
} from '../api/schemas.ts';

/** The daemon answered with an error document. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly details: ProblemDetailView[];

  constructor(status: number, code: string, message: string, details: ProblemDetailView[]) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The daemon could not be reached at all. */
export class UnreachableError extends Error {
  constructor(endpoint: string, cause: unknown) {
    super(
      `cannot reach the daemon at ${endpoint} (${describeCause(cause)}); start one with "testground daemon" or set --endpoint / TESTGROUND_ENDPOINT`,
    );
    this.name = 'UnreachableError';
  }
}

/**
 * Something answered at the endpoint, but not as a Testground daemon does (an HTML page, a proxy's error):
 * what it said is summed up, never dumped, since a web server's page can be long.
 */
export class NotADaemonError extends Error {
  constructor(endpoint: string, what: string, response: Response, body: string) {
    const type = response.headers.get('content-type')?.split(';', 1)[0] ?? 'no content type';
    super(
      `the server at ${endpoint} is not a Testground daemon: it answered ${what} with HTTP ${response.status} ` +
        `(${type}${summarize(body)}); check --endpoint / TESTGROUND_ENDPOINT (a daemon answers /api/v1/health with JSON)`,
    );
    this.name = 'NotADaemonError';
  }
}

/** A typed client of the daemon's REST API, usable against a remote daemon. */
export class ApiClient {
  private readonly endpoint: string;
  private readonly headers: Record<string, string>;

  constructor(options: { endpoint: string; token?: string; user?: string }) {
    this.endpoint = checkedEndpoint(options.endpoint);
    this.headers = {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.user ? { 'x-testground-user': options.user } : {}),
    };
  }
  /** The task's page on the daemon's dashboard (same origin as the API; the page asks for a token itself). */
  dashboardUrl(taskId: string): string {
    return `${this.endpoint}/#/tasks/${encodeURIComponent(taskId)}`;
  }

  /** Queues a run task; `runIds` picks and orders the composition's runs. */
  async submitRun(
    composition: string,
    planArchive: Buffer,
    options: SubmitOptions & { runIds?: readonly string[]; supersede?: boolean } = {},
  ): Promise<Submitted> {
    const form = submissionForm(composition, planArchive, options.metadata);
    if (options.runIds !== undefined) form.set('run_ids', options.runIds.join(','));
    if (options.supersede) form.set('supersede', 'true');
    return this.json<Submitted>('/api/v1/runs', { method: 'POST', body: form });
  }

  /** Queues a build task: the composition's groups are built, not run. */
  async submitBuild(
    composition: string,
    planArchive: Buffer,
    options: SubmitOptions = {},
  ): Promise<Submitted> {
    return this.json<Submitted>('/api/v1/builds', {
      method: 'POST',
      body: submissionForm(composition, planArchive, options.metadata),
    });
  }

  /** The task's report as the daemon renders it (`json`, `junit`, `csv` or `markdown`), as text. */
  async report(id: string, format: ReportFormat): Promise<string> {
    const response = await this.request(
      `/api/v1/tasks/${encodeURIComponent(id)}/report?format=${encodeURIComponent(format)}`,
    );
    return response.text();
  }

  getTask(id: string): Promise<TaskView> {
    return this.json<TaskView>(`/api/v1/tasks/${encodeURIComponent(id)}`);
  }

  /**
   * One page of task summaries, newest first; `next_cursor` asks for the next. The filter goes to the
   * daemon as typed: it is the daemon that refuses an unknown state.
   */
  listTasks(filter: { state?: string; plan?: string; limit?: number; cursor?: string }): Promise<TaskList> {
    const query = new URLSearchParams();
    for (const [key, value] of Object.entries(filter)) if (value !== undefined) query.set(key, String(value));
    return this.json<TaskList>(`/api/v1/tasks?${query}`);
  }

  cancel(id: string): Promise<TaskView> {
    return this.json<TaskView>(`/api/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  healthcheck(runner: string, fix: boolean): Promise<HealthcheckReport> {
    return this.json<HealthcheckReport>(
      `/api/v1/runners/${encodeURIComponent(runner)}/healthcheck?fix=${fix}`,
      { method: 'POST' },
    );
  }

  terminate(runner: string): Promise<TerminateResult> {
    return this.json<TerminateResult>(`/api/v1/runners/${encodeURIComponent(runner)}/terminate`, {
      method: 'POST',
    });
  }

  /** Removes what is past retention on the daemon; with `dryRun`, only lists it. */
  gc(dryRun: boolean): Promise<GcReport> {
    return this.json<GcReport>(`/api/v1/gc?dry_run=${dryRun}`, { method: 'POST' });
  }

  /** Removes the builder's caches of the plan, keeping what unfinished tasks need (`build purge`). */
  buildPurge(builder: string, plan: string): Promise<BuildPurgeReport> {
    return this.json<BuildPurgeReport>(
      `/api/v1/builders/${encodeURIComponent(builder)}/purge?plan=${encodeURIComponent(plan)}`,
      { method: 'POST' },
    );
  }

  /**
   * Reads a task's log, calling `onLine` for each line. Following, it resumes from the last offset
   * when the connection drops, until the task's `end` line arrives, or until `signal` aborts (then it
   * returns at once, closing the connection).
   */
  async readLogs(
    id: string,
    onLine: (line: LogLine) => void,
    options: { follow: boolean; signal?: AbortSignal },
  ): Promise<void> {
    let offset = '0';
    for (let attempt = 0; ; attempt += 1) {
      let ended = false;
      try {
        const response = await this.request(
          `/api/v1/tasks/${encodeURIComponent(id)}/logs?follow=${options.follow}&offset=${offset}`,
          options.signal ? { signal: options.signal } : {},
        );
        let partial = '';
        const decoder = new TextDecoder();
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
          partial += decoder.decode(chunk, { stream: true });
          let newline = partial.indexOf('\n');
          while (newline !== -1) {
            const line = JSON.parse(partial.slice(0, newline)) as LogLine;
            partial = partial.slice(newline + 1);
            offset = line.offset;
            if (line.kind === 'end') ended = true;
            onLine(line);
            newline = partial.indexOf('\n');
          }
        }
        if (ended || !options.follow) return;
      } catch (error) {
        if (options.signal?.aborted) return;
        if (error instanceof ApiError || attempt >= 5) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 500 * (attempt + 1)));
    }
  }

  /**
   * Streams the outputs archive of a run (given its run id) or of every run of a task (given the task id)
   * to `file`, written under a temporary name, then renamed.
   */
  async downloadOutputs(id: string, file: string): Promise<void> {
    const response = await this.request(`/api/v1/runs/${encodeURIComponent(id)}/outputs`);
    const partial = `${file}.partial`;
    try {
      await pipeline(
        Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
        createWriteStream(partial),
      );
      await rename(partial, file);
    } catch (error) {
      await rm(partial, { force: true });
      throw error;
    }
  }

  private async json<T>(path: string, init: RequestInit = {}): Promise<T> {
    const response = await this.request(path, init);
    const text = await response.text();
    if (isJson(response)) {
      try {
        return JSON.parse(text) as T;
      } catch {
        // Said below, as any other answer that is not the daemon's.
      }
    }
    throw new NotADaemonError(this.endpoint, `${init.method ?? 'GET'} ${path}`, response, text);
  }

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(`${this.endpoint}${path}`, {
        ...init,
        headers: { ...this.headers, ...(init.headers as Record<string, string> | undefined) },
      });
    } catch (error) {
      throw new UnreachableError(this.endpoint, error);
    }
    if (response.ok) return response;
    const text = await response.text();
    const body = parseErrorBody(response, text);
    // A proxy in between, or another server at that address, answers with a document of its own.
    if (body === undefined)
      throw new NotADaemonError(this.endpoint, `${init.method ?? 'GET'} ${path}`, response, text);
    throw new ApiError(response.status, body.code, body.message, body.details ?? []);
  }
}

/** Where a task comes from, for CI; recorded on the task. */
export interface SubmitOptions {
  metadata?: { repo?: string; branch?: string; commit?: string };
}

function submissionForm(
  composition: string,
  planArchive: Buffer,
  metadata: SubmitOptions['metadata'] = {},
): FormData {
  const form = new FormData();
  form.set('composition', composition);
  for (const [key, value] of Object.entries(metadata)) if (value) form.set(`metadata_${key}`, value);
  form.set('plan', new Blob([planArchive], { type: 'application/gzip' }), 'plan.tar.gz');
  return form;
}

function describeCause(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (error as Error).message;
}

/**
 * The endpoint as a base URL without a trailing slash. `127.0.0.1:8042` is refused rather than guessed at:
 * WHATWG URL parsing reads `localhost:8042` as the scheme `localhost:`, and fetch's own message for it
 * ("invalid URL") would send the user off to start a daemon that is already running.
 */
export function checkedEndpoint(endpoint: string): string {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new Error(
      `the daemon endpoint ${JSON.stringify(endpoint)} (--endpoint or TESTGROUND_ENDPOINT) is not an http:// or ` +
        `https:// URL; write it with its scheme, like http://${endpoint.replace(/^[a-z]+:\/\//i, '') || '127.0.0.1:8042'}`,
    );
  }
  return endpoint.replace(/\/+$/, '');
}

function isJson(response: Response): boolean {
  return /[/+]json\b/.test(response.headers.get('content-type') ?? '');
}

/** The daemon's error document (`{ error: { code, message, details } }`), or undefined for anything else. */
function parseErrorBody(response: Response, text: string): ErrorBody['error'] | undefined {
  if (!isJson(response)) return undefined;
  try {
    const body = JSON.parse(text) as Partial<{ error: Partial<ErrorBody['error']> }>;
    const error = body.error;
    if (typeof error?.code !== 'string' || typeof error.message !== 'string') return undefined;
    return { code: error.code, message: error.message, details: error.details ?? [] };
  } catch {
    return undefined;
  }
}

/** `, "Error response"`: an HTML page's title, or the start of a text; nothing for an empty body. */
function summarize(body: string): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(body)?.[1];
  const text = (title ?? body).replace(/\s+/g, ' ').trim();
  if (text === '') return '';
  return `, ${JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text)}`;
}
