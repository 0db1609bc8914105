/**
 * The program the outputs collector runs on a node (`node -e`, in the sync service image: Node and
 * nothing else). Through the node's own engine socket it lists the run's instance containers there, ended
 * ones included, and writes each one's `/outputs` as a tar stream to stdout, base64 in lines of JSON:
 * `{"start":[group,index]}`, `{"data":"…"}`…, `{"end":1}`; `{"skip":[group,index],"why":…}` when a
 * container has no outputs; `{"done":count}` last. The swarm gathers the lines from the node like any
 * service's output, so the daemon needs no way into the node but the manager.
 *
 * Lines stay well under the 16 KiB at which engines split a log line; writes wait for stdout to drain,
 * so a big output never piles up in memory.
 */
export const outputsDumpScript = String.raw`
const http = require('node:http');
const runId = process.env.TESTGROUND_RUN_ID;
const socketPath = '/var/run/docker.sock';
const chunkBytes = 8192;
const request = (path) => new Promise((resolve, reject) => {
  http.get({ socketPath, path }, resolve).on('error', reject);
});
const write = (message) => new Promise((resolve) => {
  if (process.stdout.write(JSON.stringify(message) + '\n')) resolve();
  else process.stdout.once('drain', resolve);
});
const readAll = async (response) => {
  let text = '';
  for await (const chunk of response) text += chunk;
  return text;
};
(async () => {
  const filters = JSON.stringify({ label: ['testground.run_id=' + runId, 'testground.role=instance'] });
  const listed = await request('/containers/json?all=1&filters=' + encodeURIComponent(filters));
  const body = await readAll(listed);
  if (listed.statusCode !== 200) throw new Error('listing containers: ' + listed.statusCode + ' ' + body);
  const containers = JSON.parse(body);
  for (const container of containers) {
    const who = [container.Labels['testground.group'], Number(container.Labels['testground.instance'])];
    const archive = await request('/containers/' + container.Id + '/archive?path=/outputs');
    if (archive.statusCode !== 200) {
      await write({ skip: who, why: archive.statusCode + ' ' + (await readAll(archive)).trim() });
      continue;
    }
    await write({ start: who });
    let pending = Buffer.alloc(0);
    for await (const chunk of archive) {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= chunkBytes) {
        await write({ data: pending.subarray(0, chunkBytes).toString('base64') });
        pending = pending.subarray(chunkBytes);
      }
    }
    if (pending.length > 0) await write({ data: pending.toString('base64') });
    await write({ end: 1 });
  }
  await write({ done: containers.length });
})().catch(async (error) => {
  await write({ fatal: String(error && error.stack || error) });
  process.exitCode = 1;
});
`;
