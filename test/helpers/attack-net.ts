/**
 * A test network for attacks, on top of the namespace pair of netns.ts: A (attacker and normal
 * client) and B (target). B also owns a few addresses of a routed /28 (on its loopback), and A
 * routes that /28 through B, so that a ping sweep's probes to addresses nobody owns still go on
 * the wire (on one link, the kernel would only send ARP requests for them). B serves HTTP
 * (python3 -m http.server) and DNS (a tiny UDP responder), and answers ICMP without rate limit
 * so that UDP scans finish quickly.
 */
import { createNsPair, sleep, waitForOutput, type NsPair } from './netns.js';

/** Answers every DNS query with its own question and one A record. */
const DNS_RESPONDER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print('dns ready', flush=True)
while True:
    q, a = s.recvfrom(512)
    r = q[:2] + b'\\x81\\x80' + q[4:6] + b'\\x00\\x01\\x00\\x00\\x00\\x00' + q[12:] + b'\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04\\x0a\\x00\\x00\\x01'
    s.sendto(r, a)
`;

export interface AttackNet extends NsPair {
  /** The target's primary address. */
  target: string;
  /** The routed /28 (a.b.c.0/28), and the addresses of it that B owns (the others are empty). */
  sweepNet: string;
  sweepLive: string[];
  httpPort: number;
}

export async function createAttackNet(): Promise<AttackNet> {
  const net = createNsPair();
  try {
    const target = net.ipsB[0];
    const [, n, m] = net.ipA.split('.');
    const prefix = `10.${Number(n) + 50}.${m}`;
    const sweepLive = [1, 2, 3, 5, 8].map((i) => `${prefix}.${i}`);
    const must = (ns: string, cmd: string[]) => {
      const r = net.exec(ns, cmd);
      if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
    };
    for (const a of sweepLive) must(net.nsB, ['ip', 'addr', 'add', `${a}/32`, 'dev', 'lo']);
    must(net.nsA, ['ip', 'route', 'add', `${prefix}.0/24`, 'via', target]);
    // B answers every probe at once (the kernel rate-limits ICMP errors per peer by default).
    for (const s of ['net.ipv4.icmp_ratelimit=0', 'net.ipv4.icmp_msgs_per_sec=100000', 'net.ipv4.icmp_msgs_burst=100000', 'net.ipv4.conf.all.rp_filter=0']) {
      net.exec(net.nsB, ['sysctl', '-q', '-w', s]);
    }
    const http = net.spawnIn(net.nsB, ['python3', '-u', '-m', 'http.server', '8000', '--bind', target], { cwd: '/tmp' });
    const dns = net.spawnIn(net.nsB, ['python3', '-u', '-c', DNS_RESPONDER, target]);
    await waitForOutput(dns, /dns ready/);
    await waitForOutput(http, /Serving HTTP/);
    await sleep(200);
    return { ...net, target, sweepNet: `${prefix}.0/28`, sweepLive, httpPort: 8000 };
  } catch (err) {
    net.destroy();
    throw err;
  }
}

/** Normal traffic from A until killed: an HTTP fetch and a DNS lookup every 300 ms. */
export function startNormalTraffic(net: AttackNet): { stop: () => void } {
  const loop = `while :; do curl -s -o /dev/null http://${net.target}:${net.httpPort}/; dig +short +tries=1 +time=1 @${net.target} host$RANDOM.example.test >/dev/null; sleep 0.3; done`;
  const child = net.spawnIn(net.nsA, ['sh', '-c', loop]);
  return {
    stop: () => {
      child.kill('SIGKILL');
    },
  };
}
