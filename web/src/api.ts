import { askForToken } from './token-prompt.ts';

const tokenKey = 'testground.token';

/** The API answered with an error body; `status` and the daemon's own message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

function storedToken(): string | null {
  return sessionStorage.getItem(tokenKey);
}

/**
 * A request to the daemon's API with the session's token. On a 401 it asks for a token (once, however many
 * requests are waiting) and retries; a token the daemon refuses is forgotten and asked for again with the
 * daemon's message, so a wrong token shows an error instead of an empty page.
 */
export async function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  let refused: string | undefined;
  for (;;) {
    const token = storedToken();
    const headers = new Headers(init.headers);
    if (token) headers.set('authorization', `Bearer ${token}`);
    const response = await fetch(`/api/v1${path}`, { ...init, headers });
    if (response.status !== 401) return response;
    const message = await errorMessage(response);
    if (token) {
      sessionStorage.removeItem(tokenKey);
      refused = `the daemon refused that token: ${message}`;
    }
    const given = await askForToken(refused);
    sessionStorage.setItem(tokenKey, given);
  }
}

export async function apiJson<T>(path: string): Promise<T> {
  const response = await apiFetch(path);
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  return (await response.json()) as T;
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text();
  try {
    const body = JSON.parse(text) as { error?: { message?: string } };
    return body.error?.message ?? `HTTP ${response.status}`;
  } catch {
    return text.trim() || `HTTP ${response.status}`;
  }
}

/**
 * Reads an NDJSON response line by line as it arrives, until it ends or `signal` aborts. Calls `onLine`
 * with each parsed line.
 */
export async function readNdjson<T>(response: Response, onLine: (line: T) => void): Promise<void> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const text = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (text !== '') onLine(JSON.parse(text) as T);
      newline = pending.indexOf('\n');
    }
  }
}

/** Saves what `path` answers as a file named `fileName` (a link cannot carry the Authorization header). */
export async function download(path: string, fileName: string): Promise<void> {
  const response = await apiFetch(path);
  if (!response.ok) throw new ApiError(response.status, await errorMessage(response));
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
