/** The `--metadata-*` flags take GitHub Actions' values by default there, and only there. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { submitOptions } from '../../cli/commands/run.ts';

const actions = {
  GITHUB_ACTIONS: 'true',
  GITHUB_REPOSITORY: 'acme/p2p',
  GITHUB_HEAD_REF: '',
  GITHUB_REF_NAME: 'main',
  GITHUB_SHA: 'abc123',
};

describe('submitOptions', () => {
  it("defaults the metadata to GitHub Actions' repository, branch and commit", () => {
    assert.deepEqual(submitOptions({}, actions), {
      metadata: { repo: 'acme/p2p', branch: 'main', commit: 'abc123' },
      supersede: false,
    });
    assert.equal(submitOptions({}, { ...actions, GITHUB_HEAD_REF: 'feature' }).metadata.branch, 'feature');
  });

  it('lets the flags win, and takes nothing from the environment outside GitHub Actions', () => {
    assert.deepEqual(submitOptions({ metadataCommit: 'def456', supersede: true }, actions), {
      metadata: { repo: 'acme/p2p', branch: 'main', commit: 'def456' },
      supersede: true,
    });
    assert.deepEqual(submitOptions({}, { ...actions, GITHUB_ACTIONS: undefined }).metadata, {});
  });
});
