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
import { FloodDetector, fromWhom, round3, type FloodTarget } from './flood.js';
import { severityFromRatio, type AnomalyEmitter } from './lifecycle.js';
import { RateWindow } from './window.js';

interface Target extends FloodTarget {
  /** Distinct destination ports of the current second (a 1024-bit bitmap) and its second. */
  ports: Uint32Array;
  portsSec: number;
  distinctPorts: number;
  /** Majority destination port (Boyer–Moore). */
  port: number;
  portVotes: number;
}

export class UdpFloodDetector extends FloodDetector<Target> {
  constructor(
    private readonly cfg: UdpFloodConfig,
    emitter: AnomalyEmitter,
  ) {
    super(cfg.maxTargets, cfg.minRate, emitter);
  }

  packet(p: PacketFacts): void {
    const pkt = p.pkt;
    if (pkt.ipProto !== IPPROTO_UDP || pkt.laterFragment) return;
    if ((p.flags & F_FROM_CLIENT) === 0) {
      // An answer from a server: count it as its reply.
      if (this.targets.size > 0) this.targets.get(p.srcKey)?.w.addAux(p.ts);
      return;
    }
    const t = this.target(p.dstKey, p);
    if (t === undefined) return;
    const rate = this.count(t, p);
    const w = t.w;
    if (w.sec !== t.portsSec) {
      t.portsSec = w.sec;
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
    if (rate >= this.cfg.minRate && w.aux() <= this.cfg.maxReplyShare * w.packets() && w.cur >= this.cfg.minPacketsPerPort * t.distinctPorts) {
      this.start(t, p.ts);
    }
  }

  protected newTarget(p: PacketFacts): Target {
    return {
      ip: p.dstIp(),
      key: 0,
      w: new RateWindow(),
      ports: new Uint32Array(32),
      portsSec: -1,
      distinctPorts: 0,
      port: 0,
      portVotes: 0,
      anomaly: null,
      flows: null,
    };
  }

  private start(t: Target, now: number): void {
    const w = t.w;
    const cfg = this.cfg;
    const source = w.source(cfg.singleSourceShare);
    // One port when the flood hammers one or two (hping3 -p): the majority one; else 0 (many ports).
    const targetPort = t.distinctPorts <= 2 ? t.port : 0;
    // The figures that crossed the thresholds, as they were then (see syn-flood.ts).
    const answered = w.aux() / Math.max(1, w.packets());
    const ports = t.distinctPorts;
    let sources = w.distinctSources();
    this.startFlood(t, 'UDP_FLOOD', source, targetPort, now, () => {
      sources = Math.max(sources, w.distinctSources());
      return {
        severity: severityFromRatio(w.peak / cfg.minRate),
        evidence: {
          packetRate: Math.round(w.peak),
          minRate: cfg.minRate,
          replyShare: round3(answered),
          maxReplyShare: cfg.maxReplyShare,
          distinctPorts: ports,
          distinctSources: sources,
        },
        summary: `UDP flood on ${t.ip}${targetPort ? `:${targetPort}` : ''} ${fromWhom(source, sources)}, peaking at ${Math.round(w.peak)} packets/s, ${Math.round(answered * 100)}% answered.`,
      };
    });
  }
}
