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
  return [requireMultipart(route), upload as RequestHandler];
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
