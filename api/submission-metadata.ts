import type { TaskMetadata } from '../core/task.ts';

/** The task's metadata from the submission's `metadata_*` fields; absent fields stay absent. */
export function metadataOf(fields: {
  metadata_repo?: string | undefined;
  metadata_branch?: string | undefined;
  metadata_commit?: string | undefined;
}): TaskMetadata {
  return {
    ...(fields.metadata_repo ? { repo: fields.metadata_repo } : {}),
    ...(fields.metadata_branch ? { branch: fields.metadata_branch } : {}),
    ...(fields.metadata_commit ? { commit: fields.metadata_commit } : {}),
  };
}
