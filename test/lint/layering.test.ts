import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ESLint } from 'eslint';
import { repoRoot } from '../helpers/processes.ts';

// The layering rules of eslint.config.js, exercised on source text that is never written to disk: the
// file paths below place it in the folder under test.
const eslint = new ESLint({
  cwd: repoRoot,
  overrideConfig: {
    // Only the layering matters here; the type-aware rules need files the TypeScript project knows.
    languageOptions: { parserOptions: { projectService: false } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/no-misused-promises': 'off',
      '@typescript-eslint/await-thenable': 'off',
      '@typescript-eslint/naming-convention': 'off',
    },
  },
});

async function layeringErrors(file: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath: path.join(repoRoot, file) });
  return (result?.messages ?? [])
    .filter(
      (message) => message.ruleId === 'boundaries/dependencies' || message.ruleId === 'no-restricted-imports',
    )
    .map((message) => message.message);
}

describe('layering (npm run lint)', () => {
  it('lets the dashboard (web/) read the API schemas and nothing else of ours', async () => {
    assert.deepEqual(
      await layeringErrors(
        'web/src/new-page.ts',
        "import type { TaskView } from '../../api/schemas.ts';\nexport type Shown = TaskView;\n",
      ),
      [],
    );
    const errors = await layeringErrors(
      'web/src/new-page.ts',
      "import { TaskStore } from '../../daemon/task-store.ts';\nvoid TaskStore;\n",
    );
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /web\/ may not import daemon\//);
  });

  it('refuses a ../daemon/ import in runners/', async () => {
    const errors = await layeringErrors(
      'runners/new-runner.ts',
      "import { startDaemon } from '../daemon/main.ts';\nvoid startDaemon;\n",
    );
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /runners\/ may not import daemon\//);
  });

  it('refuses imports upwards or sideways, and allows them downwards', async () => {
    assert.equal((await layeringErrors('api/x.ts', "import '../daemon/task-store.ts';\n")).length, 1);
    assert.equal((await layeringErrors('cli/x.ts', "import '../api/app.ts';\n")).length, 1);
    assert.equal((await layeringErrors('sdk/x.ts', "import '../core/errors.ts';\n")).length, 1);
    assert.equal((await layeringErrors('docker/x.ts', "import '../builders/builder.ts';\n")).length, 1);
    assert.deepEqual(
      await layeringErrors('cli/x.ts', "import '../api/schemas.ts';\nimport '../core/errors.ts';\n"),
      [],
    );
    assert.deepEqual(
      await layeringErrors('runners/x.ts', "import '../docker/labels.ts';\nimport '../sdk/index.ts';\n"),
      [],
    );
    assert.deepEqual(await layeringErrors('daemon/x.ts', "import '../api/app.ts';\n"), []);
  });

  it('keeps core/contract free of every dependency, ours and npm’s', async () => {
    const errors = await layeringErrors(
      'core/contract/x.ts',
      "import '../errors.ts';\nimport 'zod';\nimport 'node:fs';\nimport './units.ts';\n",
    );
    assert.equal(
      errors.filter((message) => /core\/contract\/ imports only its own files/.test(message)).length,
      3,
    );
  });
});
