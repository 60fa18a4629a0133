/**
 * A tshark display filter for exactly these flows' packets (their 5-tuples, ICMP errors quoting them
 * left out), grouped by client end so that a scan's hundreds of flows stay one short filter.
 */
export function tupleFilter(flows: { transport: string; clientIp: string; clientPort: number; serverIp: string; serverPort: number }[]): string {
  const groups = new Map<string, Set<number>>();
  for (const f of flows) {
    const key = `${f.transport} ${f.clientIp} ${f.clientPort} ${f.serverIp}`;
    let ports = groups.get(key);
    if (!ports) groups.set(key, (ports = new Set()));
    ports.add(f.serverPort);
  }
  const terms = [...groups].map(([key, ports]) => {
    const [transport, clientIp, clientPort, serverIp] = key.split(' ');
    const ip = clientIp.includes(':') ? 'ipv6' : 'ip';
    return `(${ip}.addr==${clientIp} && ${ip}.addr==${serverIp} && ${transport}.port==${clientPort} && ${transport}.port in {${[...ports].join(', ')}})`;
  });
  return `(${terms.join(' || ')}) && !icmp`;
}
