import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import os from 'node:os';
import { defaultSyncServicePort } from '../core/contract/instance-env.ts';
import { ApiClient } from './api-client.ts';
import { reportError } from './report-error.ts';
import { buildComposition, buildSingle } from './commands/build.ts';
import { runComposition, runSingle, type Output } from './commands/run.ts';
import { healthcheck, terminate } from './commands/runners.ts';
import { gc } from './commands/gc.ts';
import { cancel, collect, listTasks, logs, report, status } from './commands/tasks.ts';
import { onPath, openTask } from './commands/open.ts';
import { addToken, defaultTokensFile, listTokens, revokeTokens } from './commands/token.ts';
import type { ReportFormat } from '../api/schemas.ts';
import { exitCodes } from './exit-codes.ts';
import { describePlan } from './commands/describe.ts';
import { createPlan, importPlan, listPlans, removePlan } from './commands/plan.ts';
import { version } from './commands/version.ts';
import { completion, completionShells, type CompletionShell } from './completion.ts';
import { buildPurge } from './commands/build-purge.ts';

const defaultEndpoint = 'http://127.0.0.1:8042';

/**
 * The commands that start a server on this host rather than talk to a daemon. The entry point wires them
 * (`bin/testground.js`), so the CLI itself never imports the daemon or the sync service.
 */
export interface LocalServers {
  runDaemon(flags: {
    listen?: string;
    home?: string;
    tokensFile?: string;
    insecureNoAuth?: boolean;
  }): Promise<number>;
  runSyncService(options: { host: string; port: number }): Promise<void>;
}

/** Runs the `testground` command line and resolves to its exit code. */
export async function runCli(
  argv: string[],
  servers: LocalServers,
  output: Output = consoleOutput,
): Promise<number> {
  let exitCode: number = exitCodes.success;
  const program = buildProgram(servers, output, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (error) {
    return reportError(error, output);
  }
}

/**
 * The whole command tree, without running it: `runCli` parses with it, and `completion` and the
 * docs/cli.md generator read it, so neither can drift from the commands. Defaults that come from the
 * environment are described rather than shown, so help reads the same on every machine.
 */
export function buildProgram(
  servers: LocalServers,
  output: Output,
  setExitCode: (code: number) => void,
): Command {
  const program = new Command('testground')
    .description('Testground for TypeScript: run test plans of distributed systems, many instances at a time')
    .addOption(
      new Option('--endpoint <url>', 'daemon URL').default(
        process.env.TESTGROUND_ENDPOINT ?? defaultEndpoint,
        `TESTGROUND_ENDPOINT, else ${defaultEndpoint}`,
      ),
    )
    // No commander default: help would print the token itself.
    .option('--token <token>', 'API token (default: TESTGROUND_TOKEN)')
    .addOption(
      new Option(
        '--user <name>',
        "who is asking, recorded on tasks by a daemon without tokens (with tokens, the token's user is)",
      ).default(
        process.env.TESTGROUND_USER ?? os.userInfo().username,
        'TESTGROUND_USER, else your login name',
      ),
    )
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.out(text.trimEnd()),
      writeErr: (text) => output.err(text.trimEnd()),
    });

  const client = (): ApiClient => {
    const global = program.opts<{ endpoint: string; token?: string; user?: string }>();
    const token = global.token ?? process.env.TESTGROUND_TOKEN;
    return new ApiClient({
      endpoint: global.endpoint,
      ...(token ? { token } : {}),
      ...(global.user ? { user: global.user } : {}),
    });
  };
  const act =
    <A extends unknown[]>(action: (...args: A) => Promise<number>) =>
    async (...args: A): Promise<void> => {
      setExitCode(await action(...args));
    };

  program
    .command('daemon')
    .description('start the daemon (HTTP API, queue and worker)')
    .option('--listen <host:port>', 'listen address (TESTGROUND_LISTEN, default 127.0.0.1:8042)')
    .option('--home <dir>', 'home directory (TESTGROUND_HOME, default ~/.testground)')
    .option(
      '--tokens-file <file>',
      'tokens file: "sha256:<hex> <user> <role>" lines (TESTGROUND_TOKENS_FILE, default <home>/tokens when it exists)',
    )
    .option(
      '--insecure-no-auth',
      'listen off loopback without tokens: anyone who reaches the port can run code on this host (TESTGROUND_INSECURE_NO_AUTH=1)',
    )
    .action(
      act(
        async (options: { listen?: string; home?: string; tokensFile?: string; insecureNoAuth?: boolean }) =>
          servers.runDaemon(options),
      ),
    );

  const tokenCommand = program
    .command('token')
    .description("manage the daemon's tokens file (on the daemon's host; a running daemon reloads it)");
  const fileOption = (): Option =>
    new Option('--file <file>', 'tokens file').default(
      defaultTokensFile(process.env),
      'TESTGROUND_TOKENS_FILE, else $TESTGROUND_HOME/tokens',
    );
  tokenCommand
    .command('add')
    .description('make a token for a user and role, store its hash, print the token once')
    .argument('<user>', 'who the token is for; tasks it submits are shown as theirs')
    .addOption(
      new Option('--role <role>', 'admin: everything; user: submit, cancel own tasks; viewer: read only')
        .choices(['admin', 'user', 'viewer'])
        .makeOptionMandatory(),
    )
    .addOption(fileOption())
    .action(
      act(async (user: string, options: { file: string; role: string }) =>
        addToken({ ...options, user }, output),
      ),
    );
  tokenCommand
    .command('list')
    .description('list the users and roles of the tokens file')
    .addOption(fileOption())
    .option('--json', 'print the entries as JSON (users, roles and token hashes)')
    .action(
      act(async (options: { file: string; json?: boolean }) =>
        listTokens(options.file, output, Boolean(options.json)),
      ),
    );
  tokenCommand
    .command('revoke')
    .description('remove every token of a user; a running daemon stops accepting them within seconds')
    .argument('<user>', 'whose tokens')
    .addOption(fileOption())
    .action(
      act(async (user: string, options: { file: string }) => revokeTokens({ ...options, user }, output)),
    );

  program
    .command('sync-service')
    .description('run a standalone sync service')
    .option('--port <port>', 'port', parseInteger, defaultSyncServicePort)
    .option('--host <host>', 'address to listen on', '0.0.0.0')
    .action(
      act(async (options: { port: number; host: string }) => {
        await servers.runSyncService(options);
        return 0;
      }),
    );

  const run = program.command('run').description('submit a run');
  const waitOptions = (command: Command): Command =>
    command
      .option(
        '--wait',
        "follow the task live and exit with its outcome, the worst of its runs' (0 only on success)",
      )
      .addOption(
        new Option(
          '--detach',
          'return once the task is queued, printing its id (the default; the explicit opposite of --wait)',
        ).conflicts(['wait', 'collect', 'junit', 'resultFile']),
      )
      .option(
        '--collect',
        'after the task, download its outputs (implies --wait): <run_id>.tgz for a composition without [[runs]], ' +
          'else <task_id>.tgz holding every run as <run_id>/<group>/<instance>/<file>',
      )
      .option('-o, --collect-file <file>', 'where --collect writes the archive')
      .option(
        '--junit <file>',
        'once the task ends, write its JUnit XML report there (a testsuite per run, a testcase per group; implies --wait)',
      )
      .option(
        '-O, --result-file <file>',
        "once the task ends, write the original Testground's result file there (CSV: run_id,task_id,outcome,error; implies --wait)",
      )
      .option(
        '--json',
        'print the submission as the API answers it (POST /runs); with --wait, the ended task (GET /tasks/{id}) instead of the log',
      );
  // Their GitHub Actions defaults are applied at submit (commands/run.ts `submitOptions`).
  const metadataOptions = (command: Command): Command =>
    command
      .option(
        '--metadata-repo <repo>',
        'the repository the task comes from, recorded on it (default in GitHub Actions: GITHUB_REPOSITORY)',
      )
      .option(
        '--metadata-branch <branch>',
        'the branch, recorded on the task (default in GitHub Actions: GITHUB_HEAD_REF, else GITHUB_REF_NAME)',
      )
      .option(
        '--metadata-commit <sha>',
        'the commit, recorded on the task (default in GitHub Actions: GITHUB_SHA)',
      );
  const submitOptions = (command: Command): Command =>
    metadataOptions(command).option(
      '--supersede',
      'cancel the older tasks still queued for the same repo, branch, plan and test case (CI: a new push makes them pointless)',
    );
  const buildConfigOption = (): Option =>
    new Option('--build-cfg, --build-config <key=value>', 'build config entry (repeatable)').argParser(
      collectPair,
    );
  const dependencyOption = (): Option =>
    new Option(
      '-d, --dep <module=version>',
      "build with this version of an npm package instead of what the plan's package.json says (repeatable)",
    ).argParser(collectPair);
  submitOptions(
    waitOptions(
      run
        .command('single')
        .alias('s')
        .description('run one test case with one group of instances')
        .requiredOption(
          '-p, --plan <name|path>',
          'plan name (looked up in $TESTGROUND_HOME/plans, then ./plans) or directory',
        )
        .requiredOption('-t, --testcase <name>', 'test case')
        .option('-b, --builder <id>', "builder (default: the manifest's)")
        .option('-r, --runner <id>', "runner (default: the manifest's)")
        .requiredOption('-i, --instances <n>', 'number of instances', parseInteger)
        .addOption(
          new Option('--tp, --test-param <key=value>', 'test parameter (repeatable)').argParser(collectPair),
        )
        .addOption(buildConfigOption())
        .addOption(dependencyOption())
        .addOption(
          new Option('--run-cfg, --run-config <key=value>', 'run config entry (repeatable)').argParser(
            collectPair,
          ),
        )
        .option('--timeout <duration>', 'run timeout, like 90s or 10m (default 10m)')
        .option(
          '--ub, --use-build <artifact>',
          'start from this artifact (from "testground build") instead of building',
        ),
    ),
  ).action(
    act(async (options: Parameters<typeof runSingle>[1] & { json?: boolean }) =>
      runSingle(client(), options, output),
    ),
  );

  submitOptions(
    waitOptions(
      run
        .command('composition')
        .alias('c')
        .description('run a composition file (TOML or JSON)')
        .requiredOption('-f, --file <file>', 'composition file')
        .option('-p, --plan <name|path>', "plan location, when not found by the composition's global.plan")
        .option(
          '--run-ids <a,b>',
          "run only these of the composition's [[runs]], in this order (default: all, as written)",
          parseList,
        )
        .option(
          '-i, --ignore-artifacts',
          'build every group afresh, ignoring the artifacts written into the file (by "build composition -w")',
        ),
    ),
  ).action(
    act(async (options: Parameters<typeof runComposition>[1]) => runComposition(client(), options, output)),
  );

  const build = program
    .command('build')
    .description('build a plan without running it; prints the artifact ids that runs can start from');
  const buildWaitOptions = (command: Command): Command =>
    command
      .option('--wait', 'accepted as the original spelled it: a build is always followed to its end')
      .option(
        '--json',
        'print the ended build task as the API answers it (GET /tasks/{id}) instead of the log',
      );
  buildWaitOptions(metadataOptions(build.command('single').alias('s')))
    .description('build a plan as "run single" would (waits for the build)')
    .requiredOption(
      '-p, --plan <name|path>',
      'plan name (looked up in $TESTGROUND_HOME/plans, then ./plans) or directory',
    )
    .option('-t, --testcase <name>', "test case (default: the manifest's first)")
    .option('-b, --builder <id>', "builder (default: the manifest's)")
    .option('-r, --runner <id>', "runner the artifact is for (default: the manifest's)")
    .option('-i, --instances <n>', "instances (default: the test case's minimum)", parseInteger)
    .addOption(buildConfigOption())
    .addOption(dependencyOption())
    .action(
      act(async (options: Parameters<typeof buildSingle>[1]) => buildSingle(client(), options, output)),
    );
  buildWaitOptions(metadataOptions(build.command('composition').alias('c')))
    .description('build every group of a composition file (waits for the build)')
    .requiredOption('-f, --file <file>', 'composition file')
    .option('-p, --plan <name|path>', "plan location, when not found by the composition's global.plan")
    .option(
      '-w, --write-artifacts',
      'write each group\'s artifact into the file as [groups.run] artifact = "…", so "run composition" ' +
        'skips the build; a TOML file is rewritten from its parsed form, so its comments are not kept',
    )
    .action(
      act(async (options: Parameters<typeof buildComposition>[1]) =>
        buildComposition(client(), options, output),
      ),
    );
  build
    .command('purge')
    .alias('p')
    .description(
      "remove a builder's caches of a plan (exec:node bundles, docker:node images) that no queued or running task needs; the next build starts afresh",
    )
    .requiredOption('-b, --builder <id>', 'builder, e.g. exec:node or docker:node')
    .requiredOption('-p, --plan <name>', "the plan's manifest name")
    .option('--json', 'print what was removed as the API answers it')
    .action(
      act(async (options: { builder: string; plan: string; json?: boolean }) =>
        buildPurge(client(), options, output),
      ),
    );

  program
    .command('report')
    .description(
      "print or write a task's report: json, junit (JUnit XML), csv (the original's result file) or markdown",
    )
    .requiredOption('-t, --task <id>', 'task id')
    .addOption(
      new Option('--format <format>', 'report format')
        .choices(['json', 'junit', 'csv', 'markdown'])
        .default('json'),
    )
    .option('-o, --output <file>', 'write it to this file instead of printing it')
    .action(
      act(async (options: { task: string; format: ReportFormat; output?: string }) =>
        report(client(), options, output),
      ),
    );

  program
    .command('status')
    .description(
      'show a task; exits by its outcome like run --wait (0 only on success), 6 while it has not ended',
    )
    .requiredOption('-t, --task <id>', 'task id')
    .option('--extended', 'also show its composition, metadata and every instance of every run')
    .option('--json', 'print the task as the API answers it (GET /tasks/{id})')
    .action(
      act(async (options: { task: string; extended?: boolean; json?: boolean }) =>
        status(client(), options, output),
      ),
    );

  program
    .command('logs')
    .description("print a task's log; exits by the task's outcome like run --wait, 6 while it has not ended")
    .requiredOption('-t, --task <id>', 'task id')
    .option('-f, --follow', 'keep following until the task ends')
    .option('--json', 'print the log lines as the API sends them, one JSON document a line')
    .action(
      act(async (options: { task: string; follow?: boolean; json?: boolean }) =>
        logs(client(), options, output),
      ),
    );

  program
    .command('open')
    .description("print the task's dashboard page (and open it with xdg-open where there is one)")
    .argument('<task_id>', 'task id')
    .option('--no-browser', 'only print the URL')
    .action(
      act(async (taskId: string, options: { browser: boolean }) =>
        openTask(client(), taskId, output, options.browser ? await onPath('xdg-open') : undefined),
      ),
    );

  program
    .command('collect')
    .description("download a run's outputs as <run_id>.tgz; given a task id, every run's as <task_id>.tgz")
    .argument('<run_id>', 'a run id, or a task id for all its runs')
    .option('-o, --output <file>', 'archive path')
    .action(
      act(async (runId: string, options: { output?: string }) =>
        collect(client(), runId, options.output, output),
      ),
    );

  program
    .command('tasks')
    .description('list tasks, newest first')
    .option('--state <state>', 'queued, building, running, complete or canceled')
    .option('--plan <name>', 'only this plan')
    .option('--limit <n>', 'at most this many (pages of up to 1000 are fetched as needed)', parseInteger, 50)
    .option('--cursor <cursor>', 'continue after the last task of an earlier listing (it prints the cursor)')
    .option('--json', 'print the listing as the API answers it (GET /tasks), the pages joined')
    .action(
      act(
        async (options: { state?: string; plan?: string; limit?: number; cursor?: string; json?: boolean }) =>
          listTasks(client(), options, output),
      ),
    );

  program
    .command('cancel')
    .description('cancel a queued or running task')
    .requiredOption('-t, --task <id>', 'task id')
    .action(act(async (options: { task: string }) => cancel(client(), options.task, output)));

  program
    .command('healthcheck')
    .description('check what a runner needs (engine, runtime image, leftovers)')
    .requiredOption('-r, --runner <id>', 'runner, e.g. local:docker')
    .option('--fix', 'repair what can be repaired')
    .option('--json', 'print the report as the API answers it')
    .action(
      act(async (options: { runner: string; fix?: boolean; json?: boolean }) =>
        healthcheck(client(), options, output),
      ),
    );

  program
    .command('terminate')
    .description("cancel a runner's tasks and remove what ended runs left behind")
    .requiredOption('-r, --runner <id>', 'runner, e.g. local:docker')
    .action(act(async (options: { runner: string }) => terminate(client(), options.runner, output)));

  program
    .command('gc')
    .description(
      "remove what is past the daemon's retention (outputs, task snapshots, build caches, plan images); never what a queued or running task needs",
    )
    .option('--dry-run', 'list what would be removed, and remove nothing')
    .option('--json', 'print the report as the API answers it')
    .action(
      act(async (options: { dryRun?: boolean; json?: boolean }) =>
        gc(client(), Boolean(options.dryRun), output, Boolean(options.json)),
      ),
    );

  program
    .command('describe')
    .description(
      'describe a plan from its manifest: test cases, instance bounds, params with type, default, unit and description',
    )
    .requiredOption(
      '-p, --plan <name|path>',
      'plan name (looked up in $TESTGROUND_HOME/plans, then ./plans) or directory',
    )
    .option('--json', 'print the description as JSON')
    .action(act(async (options: { plan: string; json?: boolean }) => describePlan(options, output)));

  const plan = program.command('plan').description('manage the plans in $TESTGROUND_HOME/plans');
  plan
    .command('list')
    .description('list the plans in $TESTGROUND_HOME/plans (and ./plans), with --testcases their test cases')
    .option('--testcases', 'one line per test case instead of one per plan')
    .option('--json', 'print the plans as JSON')
    .action(act(async (options: { testcases?: boolean; json?: boolean }) => listPlans(options, output)));
  plan
    .command('create')
    .description(
      'create a TypeScript plan in $TESTGROUND_HOME/plans/<name> (manifest, a test case, package.json, tsconfig.json) that runs as it is',
    )
    .requiredOption('-p, --plan <name>', 'name of the plan to create')
    .addOption(
      new Option(
        '--target <language>',
        "the template's language (the original offered go; plans here are TypeScript)",
      )
        .choices(['typescript'])
        .default('typescript'),
    )
    .option('--dir <dir>', 'create it here instead of $TESTGROUND_HOME/plans/<name>')
    .action(act(async (options: { plan: string; dir?: string }) => createPlan(options, output)));
  plan
    .command('import')
    .description('copy a plan directory into $TESTGROUND_HOME/plans (without node_modules and .git)')
    .requiredOption('--from <dir>', 'the plan directory (holds manifest.toml)')
    .option('--name <name>', "directory name under $TESTGROUND_HOME/plans (default: the source's)")
    .action(act(async (options: { from: string; name?: string }) => importPlan(options, output)));
  plan
    .command('rm')
    .description('remove a plan directory from $TESTGROUND_HOME/plans')
    .requiredOption('-p, --plan <name>', 'the plan directory name')
    .option('--yes', 'confirm the removal (without it, nothing is removed)')
    .action(act(async (options: { plan: string; yes?: boolean }) => removePlan(options, output)));

  program
    .command('version')
    .description("print this CLI's version and, when it answers, the daemon's")
    .option('--json', 'print the versions as JSON')
    .action(
      act(async (options: { json?: boolean }) =>
        version(program.opts<{ endpoint: string }>().endpoint, Boolean(options.json), output),
      ),
    );

  program
    .command('completion')
    .description(
      'print a shell completion script: source <(testground completion bash) in ~/.bashrc, the same with zsh in ~/.zshrc; fish: save it as ~/.config/fish/completions/testground.fish',
    )
    .addArgument(new Argument('<shell>', 'the shell').choices(completionShells))
    .action(
      act(async (shell: CompletionShell) => {
        output.out(completion(program, shell));
        return exitCodes.success;
      }),
    );
  return program;
}

const consoleOutput: Output = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

function parseInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0)
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number`);
  return parsed;
}

function parseList(value: string): string[] {
  const names = value.split(',').map((name) => name.trim());
  if (names.some((name) => name === ''))
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a comma-separated list of run ids`);
  return names;
}

/** A repeatable `key=value` flag; no default, so help does not show an empty `{}` for it. */
function collectPair(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const separator = value.indexOf('=');
  if (separator <= 0) throw new InvalidArgumentError(`${JSON.stringify(value)} is not key=value`);
  return { ...previous, [value.slice(0, separator)]: value.slice(separator + 1) };
}
