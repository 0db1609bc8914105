import type { HostFeatureName, HostNetworkFeatures } from './host-network-features.ts';
import { HostCommandError, runHostCommand } from '../host-command.ts';
import { shFromStdin } from './namespace-command.ts';
import { resendMark } from './shaping-plan.ts';

const probeTimeoutMs = 20_000;
const features: HostFeatureName[] = [
  'netem',
  'htb',
  'u32',
  'ifb',
  'iptables',
  'iptablesStatistic',
  'nfqueueDelayer',
];

/**
 * Tries every mechanism the shaper may use, for real, in a throwaway network namespace (`unshare --net`:
 * it disappears with the probe's shell, so nothing on the host is touched): a netem qdisc, HTB with u32
 * filters and a drop action, an ingress redirect to an IFB device, iptables chains with REJECT, MARK, the
 * statistic match and NFQUEUE, and the packet delayer binding a queue. A feature counts only when the
 * kernel accepted it (`modprobe` may not exist; modules load on demand or not at all). No tc action but
 * mirred is used or probed: kernels without act_gact exist (this project's CI machine is one).
 *
 * @param delayer the delayer's binary, or why there is none (its build failed).
 */
export async function detectNetworkFeatures(
  delayer: { binary: string } | { problem: string },
): Promise<HostNetworkFeatures> {
  const script = probeScript('binary' in delayer ? delayer.binary : undefined);
  let stdout: string;
  try {
    stdout = await runHostCommand('unshare', ['--net', ...shFromStdin], {
      input: script,
      timeoutMs: probeTimeoutMs,
      what: 'probing the network features in a throwaway namespace (unshare --net)',
    });
  } catch (error) {
    const reason = error instanceof HostCommandError ? error.message : String(error);
    return noFeatures(reason);
  }
  const result = noFeatures('not probed');
  for (const line of stdout.split('\n')) {
    const match = /^(\w+) (ok|missing)(?: (.*))?$/.exec(line);
    const name = match?.[1] as HostFeatureName | undefined;
    if (!match || !name || !features.includes(name)) continue;
    if (match[2] === 'ok') {
      result[name] = true;
      delete result.missing[name];
    } else {
      result.missing[name] = match[3]?.trim() || 'the kernel refused it';
    }
  }
  if ('binary' in delayer) {
    if (result.nfqueueDelayer) result.delayerBinary = delayer.binary;
  } else {
    result.missing.nfqueueDelayer = delayer.problem;
  }
  return result;
}

function noFeatures(reason: string): HostNetworkFeatures {
  return {
    netem: false,
    htb: false,
    u32: false,
    ifb: false,
    iptables: false,
    iptablesStatistic: false,
    nfqueueDelayer: false,
    missing: Object.fromEntries(features.map((name) => [name, reason])),
  };
}

function probeScript(delayerBinary: string | undefined): string {
  const mark = (value: number): string => `0x${value.toString(16)}/0x${value.toString(16)}`;
  const restore = (lines: string[]): string =>
    `printf '%s\\n' ${lines.map((line) => `'${line}'`).join(' ')} | iptables-restore -w --noflush`;
  return [
    'ip link set lo up',
    'ip link add tgp0 type veth peer name tgp1 && ip link set tgp0 up && ip link set tgp1 up',
    // "<name> ok" or "<name> missing <the command's first line of error>"
    'report() { if [ "$2" -eq 0 ]; then echo "$1 ok"; else echo "$1 missing $(printf "%s" "$3" | head -n 1)"; fi; }',
    'out=$(tc qdisc add dev tgp0 root netem delay 1ms 2>&1); report netem $? "$out"',
    'tc qdisc del dev tgp0 root 2>/dev/null',
    'out=$(tc qdisc add dev tgp0 root handle 1: htb default 0 2>&1); report htb $? "$out"',
    'out=$( (tc filter add dev tgp0 parent 1: protocol ip prio 1 u32 match ip dst 10.0.0.0/8 flowid 1: &&' +
      ' tc class add dev tgp0 parent 1: classid 1:3 htb rate 100gbit ceil 100gbit quantum 200000 &&' +
      ' tc qdisc add dev tgp0 parent 1:3 handle 3: pfifo limit 0 &&' +
      ' tc filter add dev tgp0 parent 1: protocol ip prio 2 u32 match ip dst 10.1.0.0/16 flowid 1:3) 2>&1);' +
      ' report u32 $? "$out"',
    'out=$( (ip link add tgpifb type ifb && ip link set tgpifb up && tc qdisc add dev tgp1 handle ffff: ingress &&' +
      ' tc filter add dev tgp1 parent ffff: protocol ip prio 1 u32 match ip src 10.0.0.0/8 flowid ffff:1 &&' +
      ' tc filter add dev tgp1 parent ffff: protocol ip prio 2 u32 match u32 0 0 action mirred egress redirect dev tgpifb) 2>&1);' +
      ' report ifb $? "$out"',
    'out=$( (' +
      restore([
        '*filter',
        ':TESTGROUND-PROBE - [0:0]',
        `-A TESTGROUND-PROBE -m mark --mark ${mark(resendMark)} -j RETURN`,
        '-A TESTGROUND-PROBE -o tgp0 -d 10.0.0.0/8 -p tcp -j REJECT --reject-with tcp-reset',
        '-A TESTGROUND-PROBE -o tgp0 -d 10.0.0.0/8 -j REJECT --reject-with icmp-port-unreachable',
        '-A TESTGROUND-PROBE ! -d 10.0.0.0/8 -j REJECT --reject-with icmp-net-unreachable',
        '-A TESTGROUND-PROBE -i tgp0 -j DROP',
        'COMMIT',
      ]) +
      ' && iptables -w -t filter -I OUTPUT 1 -j TESTGROUND-PROBE) 2>&1); report iptables $? "$out"',
    'out=$( (' +
      restore([
        '*filter',
        ':TESTGROUND-STATISTIC - [0:0]',
        '-A TESTGROUND-STATISTIC -m statistic --mode random --probability 0.5 -j DROP',
        'COMMIT',
      ]) +
      ') 2>&1); report iptablesStatistic $? "$out"',
    delayerBinary === undefined
      ? 'echo "nfqueueDelayer missing no binary"'
      : 'out=$( (' +
        restore([
          '*filter',
          ':TESTGROUND-QUEUE - [0:0]',
          '-A TESTGROUND-QUEUE -o tgp0 -j NFQUEUE --queue-num 7400 --queue-bypass',
          'COMMIT',
        ]) +
        ` && ${shellQuote(delayerBinary)} --probe) 2>&1); report nfqueueDelayer $? "$out"`,
    '',
  ].join('\n');
}

function shellQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}
