import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parseNetworkConfig } from '../../../core/contract/network-config.ts';
import { LinuxNetworkShaper } from '../../../runners/network/linux-network-shaper.ts';
import { createLab, type LabInstance } from './netns-lab.ts';
const cfg = (w: Record<string, unknown>) => parseNetworkConfig({ callback_state: 'x', routing_policy: 'allow_all', ...w });
test('debug', async () => {
  const lab = await createLab('tgdbg', ['a', 'b', 'c']);
  const { a, b, c } = lab.instances as Record<string, LabInstance>;
  const shaper = new LinuxNetworkShaper({ buildDir: path.join(os.tmpdir(), 'testground-packet-delayer') });
  try {
    for (const i of [a, b, c]) { await i!.agent.call('udpEcho', { port: 7000 }); await i!.agent.call('tcpSink', { port: 7001 }); }
    const ping = async (opts: Record<string, unknown>) => { const r = await a!.agent.call<{ sent: number; received: number; sendErrors: number }>('udpPing', { host: b!.dataAddress, port: 7000, ...opts }); return `${r.sent} ${r.received} ${(1 - r.received / r.sent) * 100}% errors ${r.sendErrors}`; };
    const tp = async (to: LabInstance, d: number) => { await a!.agent.call('tcpStream', { host: to.dataAddress, port: 7001, durationMs: d }); return (await to.agent.call<{ mbps: number }>('tcpSinkRate', { port: 7001, fromMs: 500, toMs: d - 100 })).mbps; };
    console.log('baseline', await ping({ count: 5000, perTick: 25, intervalMs: 5, waitMs: 500 }));
    await shaper.apply(a!.target, cfg({ default: { loss: 0.0001 } }));
    console.log('queue no loss', await ping({ count: 5000, perTick: 25, intervalMs: 5, waitMs: 500 }));
    await shaper.apply(a!.target, cfg({ default: { loss: 10 } }));
    console.log('loss 10', await ping({ count: 5000, perTick: 25, intervalMs: 5, waitMs: 500 }));
    console.log('loss 10 slow', await ping({ count: 5000, perTick: 5, intervalMs: 1, waitMs: 500 }));
    await shaper.apply(a!.target, cfg({ rules: [{ subnet: `${b!.dataAddress}/32`, bandwidth: 10_000_000 }] }));
    for (const d of [2000, 3000, 2000]) console.log('rule B', d, await tp(b!, d));
    await shaper.apply(a!.target, cfg({ default: { bandwidth: 10_000_000 } }));
    for (const d of [2000, 3000, 2000]) console.log('default', d, await tp(b!, d));
    console.log('C', await tp(c!, 2000));
  } finally { await shaper.close(); await lab.remove(); }
});
