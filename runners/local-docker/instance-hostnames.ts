/**
 * The hostname of each instance container. Both SDKs publish network configurations on
 * `network:<os.hostname()>`, so a hostname must be unique in the run; it is also what a person reads in
 * logs, so it says which instance it is: `<group>-<index>` (`peers-3`), made a valid DNS label.
 */

/** Longest hostname the kernel and DNS accept as one label. */
const maxHostnameChars = 63;

/** A group id as the start of a DNS label: lower case letters, digits and inner hyphens. */
function labelOf(group: string): string {
  const label = group
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-{2,}/g, '-')
    .replace(/^-+|-+$/g, '');
  return label === '' ? 'instance' : label;
}

/**
 * One hostname per instance, in the order given, unique among them: `<group>-<index>`, and when two
 * groups read alike once made valid (`a_b` and `a.b` both give `a-b`), the later one gets a `-<n>` suffix.
 */
export function assignHostnames(instances: readonly { group: string; index: number }[]): string[] {
  const taken = new Set<string>();
  return instances.map(({ group, index }) => {
    const base = (suffix: string): string =>
      `${labelOf(group)
        .slice(0, maxHostnameChars - suffix.length)
        .replace(/-+$/, '')}${suffix}`;
    let hostname = base(`-${index}`);
    for (let n = 2; taken.has(hostname); n += 1) hostname = base(`-${index}-${n}`);
    taken.add(hostname);
    return hostname;
  });
}
