import type { z } from 'zod';
import { ValidationError, type ProblemDetail } from '../core/errors.ts';

/** Which part of the request a schema checks, for messages: "invalid query: limit …". */
export type RequestPart = 'path' | 'query' | 'multipart field';

/** Parses one part of a request with its schema; a ValidationError names every bad field and its value. */
export function parseRequest<T extends z.ZodType>(schema: T, value: unknown, part: RequestPart): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const details: ProblemDetail[] = parsed.error.issues.map((issue) => {
    const given = valueAt(value, issue.path);
    return {
      path: issue.path.join('.'),
      message: given === undefined ? issue.message : `${JSON.stringify(given)}: ${issue.message}`,
    };
  });
  throw new ValidationError(
    `invalid ${part}: ${details.map((detail) => `${detail.path} ${detail.message}`).join('; ')}`,
    details,
  );
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
