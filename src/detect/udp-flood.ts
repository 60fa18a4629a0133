// UDP flood against one host: a high rate of datagrams towards it that it does not answer.
//
// Per target host: datagrams sent to it by the flows' initiators (so a host downloading over QUIC
// is not the target of its own download), over a sliding one-second window, and its UDP answers.
// A flood is a rate of at least `minRate` with at most `maxReplyShare` answered, and at least
// `minPacketsPerPort` datagrams per distinct destination port in the current second: a UDP port
// scan probes each port once or twice and is the port scan detector's business.
import { IPPROTO_UDP } from '../decode/ip.js';
import { finish } from '../flow/hash.js';
import type { UdpFloodConfig } from './config.js';
import { F_FROM_CLIENT, type PacketFacts } from './facts.js';
import { severityFromRatio, type Anomaly, type AnomalyEmitter } from './lifecycle.js';
import { round3 } from './syn-flood.js';
import type { Detector } from './types.js';
import { RateWindow, makeRoom } from './window.js';

interface Target {
  ip: string;
  w: RateWindow;
  /** Distinct destination ports of the current second (a 1024-bit bitmap) and its second. */
  ports: Uint32Array;
  portsSec: number;
  distinctPorts: number;
  /** Majority destination port (Boyer–Moore). */
  port: number;
  portVotes: number;
  anomaly: Anomaly | null;
}

const TARGET_IDLE_US = 10e6;

export class UdpFloodDetector implements Detector {
  private readonly targets = new Map<number, Target>();

  constructor(
    private readonly cfg: UdpFloodConfig,
    private readonly emitter: AnomalyEmitter,
  ) {}

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.ipProto !== IPPROTO_UDP || pkt.laterFragment) return;
    if ((p.flags & F_FROM_CLIENT) === 0) {
      // An answer from a server: count it as its reply.
      this.targets.get(p.srcKey)?.w.addAux(p.ts);
      return;
    }
    let t = this.targets.get(p.dstKey);
    if (t === undefined) {
      if (!makeRoom(this.targets, this.cfg.maxTargets, (v) => v.anomaly !== null)) return;
      t = { ip: p.dstIp(), w: new RateWindow(), ports: new Uint32Array(32), portsSec: -1, distinctPorts: 0, port: 0, portVotes: 0, anomaly: null };
      this.targets.set(p.dstKey, t);
    }
    const w = t.w;
    w.add(p);
    const sec = w.sec;
    if (sec !== t.portsSec) {
      t.portsSec = sec;
      t.ports.fill(0);
      t.distinctPorts = 0;
    }
    const port = pkt.hasPorts ? pkt.dstPort : 0;
    const bit = finish(port) & 1023;
    if ((t.ports[bit >>> 5] & (1 << (bit & 31))) === 0) {
      t.ports[bit >>> 5] |= 1 << (bit & 31);
      t.distinctPorts++;
    }
    if (port === t.port) t.portVotes++;
    else if (t.portVotes === 0) {
      t.port = port;
      t.portVotes = 1;
    } else t.portVotes--;
    const rate = w.rate(p.ts);
    if (rate > w.peak) w.peak = rate;
    if (t.anomaly !== null) {
      if (rate >= this.cfg.minRate / 2) t.anomaly.touch(p.ts, p.bytes);
    } else if (
      rate >= this.cfg.minRate &&
      w.aux() <= this.cfg.maxReplyShare * w.packets() &&
      w.cur >= this.cfg.minPacketsPerPort * t.distinctPorts
    ) {
      this.start(t, p.ts);
    }
  }

  private start(t: Target, now: number): void {
    const w = t.w;
    const cfg = this.cfg;
    const source = w.source(cfg.singleSourceShare);
    // One port when the flood hammers one or two (hping3 -p): the majority one; else 0 (many ports).
    const targetPort = t.distinctPorts <= 2 ? t.port : 0;
    t.anomaly = this.emitter.start({
      kind: 'UDP_FLOOD',
      source,
      targetIp: t.ip,
      targetPort,
      startedAt: w.surgeStart(cfg.minRate / 4),
      now,
      packets: w.packets(),
      bytes: w.bytes(),
      view: () => ({
        severity: severityFromRatio(w.peak / cfg.minRate),
        evidence: {
          packetRate: Math.round(w.peak),
          minRate: cfg.minRate,
          replyShare: round3(w.aux() / Math.max(1, w.packets())),
          maxReplyShare: cfg.maxReplyShare,
          distinctPorts: t.distinctPorts,
          distinctSources: w.distinctSources(),
        },
        summary: `UDP flood on ${t.ip}${targetPort ? `:${targetPort}` : ''} from ${source === 'distributed' ? `about ${w.distinctSources()} sources` : source}, peaking at ${Math.round(w.peak)} packets/s, ${Math.round((w.aux() / Math.max(1, w.packets())) * 100)}% answered.`,
      }),
      onEnd: () => {
        t.anomaly = null;
      },
    });
  }

  tick(now: number): void {
    for (const [k, t] of this.targets) {
      if (t.anomaly === null && now - t.w.lastTs > TARGET_IDLE_US) this.targets.delete(k);
    }
  }

  reset(): void {
    this.targets.clear();
  }
}
