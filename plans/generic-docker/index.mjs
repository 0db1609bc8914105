// A plan without any SDK: it writes the seed-format events (CONTRACT §4) on stdout itself, which is all a
// runner needs to decide the outcome.
const env = process.env;
const runId = env.TEST_RUN ?? '';
const groupId = env.TEST_GROUP_ID ?? '';

function record(event) {
  // `ts` is Unix time in nanoseconds, more digits than a JS number holds exactly: write it as text.
  const ts = `${BigInt(Date.now()) * 1_000_000n}`;
  const envelope = JSON.stringify({ msg: '', group_id: groupId, run_id: runId, event });
  process.stdout.write(`{"ts":${ts},${envelope.slice(1)}\n`);
}

function params() {
  if (env.TEST_INSTANCE_PARAMS_JSON) return JSON.parse(env.TEST_INSTANCE_PARAMS_JSON);
  const pairs = (env.TEST_INSTANCE_PARAMS ?? '').split('|').filter(Boolean);
  return Object.fromEntries(
    pairs.map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [pair, ''] : [pair.slice(0, at), pair.slice(at + 1)];
    }),
  );
}

record({
  type: 'start',
  runenv: {
    plan: env.TEST_PLAN ?? '',
    case: env.TEST_CASE ?? '',
    run: runId,
    params: params(),
    instances: Number(env.TEST_INSTANCE_COUNT ?? 1),
    outputs_path: env.TEST_OUTPUTS_PATH ?? '',
    network: env.TEST_SUBNET ?? '',
    group: groupId,
    group_instances: Number(env.TEST_GROUP_INSTANCE_COUNT ?? 1),
  },
});
if (env.TEST_CASE !== 'ok') {
  record({
    type: 'finish',
    outcome: 'failure',
    error: `unknown test case ${JSON.stringify(env.TEST_CASE)}; this plan has "ok"`,
  });
  process.exit(0);
}
record({ type: 'message', message: `generic-docker: hello from ${process.version} in a container` });
record({ type: 'finish', outcome: 'ok' });
