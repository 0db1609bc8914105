/**
 * What `testground plan create` writes: a plan that builds and runs as it is (exec:node on local:exec,
 * docker:node on local:docker), with one test case that uses a param and the sync service, so a new user
 * starts from something that passes and shows the moving parts.
 */
export function planSkeleton(name: string): Record<string, string> {
  return {
    'manifest.toml': `name = ${JSON.stringify(name)}

[defaults]
builder = "exec:node"
runner = "local:exec"

[builders."exec:node"]
enabled = true

[builders."docker:node"]
enabled = true

[runners."local:exec"]
enabled = true

[runners."local:docker"]
enabled = true

# Every instance greets, then waits until every instance has: run it with any number of instances.
[[testcases]]
name = "hello"
instances = { min = 1, max = 100, default = 2 }
  [testcases.params]
  greeting = { type = "string", default = "hello", desc = "what each instance says before the barrier" }
  pause = { type = "int", default = 0, unit = "ms", desc = "how long each instance waits before it greets" }
`,
    'index.ts': `import { invokeMap, type RunEnv, type SyncClientApi } from 'testground-sdk';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// A test case resolves to succeed and throws to fail; the sync client connects on its first use.
async function hello(runenv: RunEnv, client: SyncClientApi): Promise<void> {
  await sleep(runenv.intParam('pause'));
  const seq = await client.signalAndWait('greeted', runenv.testInstanceCount);
  runenv.recordMessage(\`\${runenv.stringParam('greeting')} from instance \${seq} of \${runenv.testInstanceCount}\`);
}

await invokeMap({ hello });
`,
    'package.json': `${JSON.stringify({ name, private: true, type: 'module', main: 'index.ts' }, null, 2)}\n`,
    // The builder bundles the SDK whatever is installed here; installing the packed testground-sdk
    // (npm install <path to testground-sdk-*.tgz>) gives an editor and plain tsc its types.
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          allowImportingTsExtensions: true,
        },
        include: ['*.ts'],
      },
      null,
      2,
    )}\n`,
    '.gitignore': 'node_modules/\n',
  };
}
