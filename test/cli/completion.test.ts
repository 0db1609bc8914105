/**
 * `testground completion bash|zsh|fish`: the bash script is loaded in a real bash and asked what completes,
 * as bash's programmable completion would (COMP_WORDS / COMP_CWORD, then the function it registered).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli as testground } from '../../cli/main.ts';
import { scratchDir } from '../helpers/processes.ts';

async function script(shell: string): Promise<string> {
  const out: string[] = [];
  const code = await testground(
    ['node', 'testground', 'completion', shell],
    { runDaemon: () => assert.fail(), runSyncService: () => assert.fail() },
    { out: (text) => out.push(text), err: (text) => assert.fail(text) },
  );
  assert.equal(code, 0);
  return `${out.join('\n')}\n`;
}

describe('testground completion', () => {
  let scratch: Awaited<ReturnType<typeof scratchDir>>;
  let bashFile: string;
  before(async () => {
    scratch = await scratchDir('completion');
    bashFile = path.join(scratch.dir, 'testground.bash');
    await writeFile(bashFile, await script('bash'));
  });
  after(() => scratch?.remove());

  /** What bash offers for the last word of `line` (the word being typed; '' after a trailing space). */
  const complete = (line: string): string[] => {
    const words = line.split(' ');
    const program = [
      'set -e',
      `source ${JSON.stringify(bashFile)}`,
      `complete -p testground >/dev/null`,
      `COMP_WORDS=(${words.map((word) => JSON.stringify(word)).join(' ')})`,
      `COMP_CWORD=${words.length - 1}`,
      '_testground',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const ran = spawnSync('bash', ['--norc', '--noprofile', '-c', program], {
      encoding: 'utf8',
      cwd: scratch.dir,
    });
    assert.equal(ran.status, 0, `bash failed: ${ran.stderr}`);
    return ran.stdout.split('\n').filter((word) => word !== '');
  };

  it('loads in bash and completes commands, subcommands and their aliases', () => {
    const top = complete('testground ');
    for (const command of ['run', 'build', 'status', 'logs', 'describe', 'plan', 'version', 'completion']) {
      assert.ok(top.includes(command), `${command} is offered at the top: ${top.join(' ')}`);
    }
    assert.deepEqual(complete('testground ru'), ['run']);
    assert.deepEqual(complete('testground run '), ['single', 's', 'composition', 'c', '--help']);
    assert.deepEqual(complete('testground plan '), ['list', 'create', 'import', 'rm', '--help']);
    assert.deepEqual(complete('testground completion '), ['bash', 'zsh', 'fish', '--help']);
  });

  it("completes a command's flags, the original's spellings included, after flags and their values", () => {
    assert.deepEqual(complete('testground run s -p placebo --t'), [
      '--testcase',
      '--tp',
      '--test-param',
      '--timeout',
    ]);
    assert.deepEqual(complete('testground --endpoint http://x:1 run single --run'), [
      '--runner',
      '--run-cfg',
      '--run-config',
    ]);
    assert.deepEqual(complete('testground status --'), ['--task', '--extended', '--json', '--help']);
    assert.deepEqual(complete('testground build purge -'), [
      '-b',
      '--builder',
      '-p',
      '--plan',
      '--json',
      '--help',
    ]);
  });

  it("offers a flag's choices for its value, and file names where the value is a path", async () => {
    assert.deepEqual(complete('testground report --format '), ['json', 'junit', 'csv', 'markdown']);
    assert.deepEqual(complete('testground token add bob --role a'), ['admin']);
    await writeFile(path.join(scratch.dir, 'comp.toml'), '');
    assert.deepEqual(complete('testground run composition -f com'), ['comp.toml']);
  });

  it('zsh runs the same function through bashcompinit; fish gets its own complete lines', async () => {
    const zsh = await script('zsh');
    assert.match(zsh, /^#compdef testground$/m);
    assert.match(zsh, /bashcompinit/);
    assert.match(zsh, /^complete -o default -F _testground testground$/m);
    const fish = await script('fish');
    assert.match(fish, /^complete -c testground -f -n '__fish_use_subcommand' -a 'run' -d 'submit a run'$/m);
    assert.match(
      fish,
      /^complete -c testground -n '__fish_seen_subcommand_from run; and __fish_seen_subcommand_from single s' -l tp -l test-param -r -d 'test parameter \(repeatable\)'$/m,
    );
  });
});
