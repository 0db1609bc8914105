import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { ValidationError } from '../core/errors.ts';
import type { ApiDeps } from './deps.ts';
import { maxCompositionBytes } from './schemas.ts';

/**
 * The middleware of a submission route (`POST /runs`, `POST /builds`): multipart/form-data only, text fields
 * up to the composition's size, and one plan archive up to the upload limit, stored under the upload dir.
 */
export function planUpload(
  deps: Pick<ApiDeps, 'uploadDir' | 'maxUploadBytes'>,
  route: string,
): RequestHandler[] {
  const upload = multer({
    dest: deps.uploadDir,
    // composition, run_ids, supersede and three metadata fields, and the plan: a few to spare, no more.
    limits: {
      fileSize: deps.maxUploadBytes,
      files: 1,
      fields: 10,
      fieldSize: maxCompositionBytes,
      parts: 12,
    },
  }).single('plan');
  const parse: RequestHandler = (request, response, next) => {
    (upload as RequestHandler)(request, response, (error?: unknown) => {
      next(error === undefined ? undefined : malformedForm(error, route));
    });
  };
  return [requireMultipart(route), parse];
}

/**
 * Multer's own errors (limits, unexpected fields) pass on to the error middleware; anything else the
 * form parser throws (no boundary, a boundary the body never uses, a part without headers, a body that
 * ends mid-part) is a form the client built wrong.
 */
function malformedForm(error: unknown, route: string): unknown {
  if (error instanceof multer.MulterError || !(error instanceof Error)) return error;
  // A system error (the upload dir unwritable, the disk full) is the daemon's trouble, not the form's.
  if ((error as NodeJS.ErrnoException).code !== undefined) return error;
  return new ValidationError(
    `POST /api/v1${route}: the multipart/form-data body cannot be read (${error.message}); send a "composition" field and a "plan" file with the boundary the content-type names`,
    [{ path: 'body', message: `not a readable multipart/form-data body: ${error.message}` }],
  );
}

/** The uploaded plan archive's path; a ValidationError naming the part when there is none. */
export function uploadedArchive(request: Request): string {
  const archivePath = request.file?.path;
  if (!archivePath) {
    throw new ValidationError('the "plan" file is missing: attach the plan directory as a .tar.gz', [
      { path: 'plan', message: 'required: a .tar.gz of the plan directory' },
    ]);
  }
  return archivePath;
}

function requireMultipart(route: string): RequestHandler {
  return (request, _response, next) => {
    if (request.is('multipart/form-data')) return next();
    next(
      new ValidationError(
        `POST /api/v1${route} takes multipart/form-data with a "composition" field (TOML or JSON) and a "plan" file (.tar.gz)`,
        [
          {
            path: 'content-type',
            message: `${JSON.stringify(request.get('content-type') ?? '')} is not multipart/form-data`,
          },
        ],
      ),
    );
  };
}
