/**
 * A small capture for the alerting tests, built byte by byte: a SMB fan-out (one source opening
 * TCP 445 on `fanout` hosts), a DNS query and answer for www.bad.example, a TLS-port connection to
 * 198.51.100.7, and quiet background (a few HTTP connections). Every flow ends within the file.
 */
import { writeFileSync } from 'node:fs';
import { concat, ETHERTYPE, ethernet, ip, LINKTYPE, TCP_FLAGS, tcp, ts, u8, be16, udp } from './frames.js';
import { pcap, type PcapFrame } from './pcap-writer.js';

export const FANOUT_SOURCE = '10.0.0.1';
export const DNS_CLIENT = '10.0.0.2';
export const DNS_SERVER = '10.0.0.53';
export const LISTED_SERVER = '198.51.100.7';
export const BAD_NAME = 'www.bad.example';

function dnsMessage(id: number, name: string, answer: boolean): Uint8Array {
  const qname = concat(...name.split('.').map((l) => concat(u8(l.length), new TextEncoder().encode(l))), u8(0));
  const question = concat(qname, be16(1), be16(1));
  const header = concat(be16(id), be16(answer ? 0x8180 : 0x0100), be16(1), be16(answer ? 1 : 0), be16(0), be16(0));
  const rr = answer ? concat(be16(0xc00c), be16(1), be16(1), concat(be16(0), be16(60)), be16(4), u8(192, 0, 2, 1)) : new Uint8Array(0);
  return concat(header, question, rr);
}

function frame(sec: number, src: string, dst: string, l4: Parameters<typeof ip>[0]['l4']): PcapFrame {
  return { ts: ts(Math.floor(sec), Math.round((sec % 1) * 1e6)), data: ethernet({ etherType: ETHERTYPE.IPV4, payload: ip({ src, dst, l4 }) }) };
}

/** Writes the capture; `t0` is its first second (epoch seconds). Returns the fan-out's targets. */
export function writeAlertCapture(path: string, o: { t0: number; fanout: number }): string[] {
  const frames: PcapFrame[] = [];
  const targets: string[] = [];
  let t = o.t0;
  for (let i = 0; i < o.fanout; i++) {
    const dst = `10.0.1.${i + 1}`;
    targets.push(dst);
    frames.push(frame(t, FANOUT_SOURCE, dst, tcp({ srcPort: 40000 + i, dstPort: 445, flags: TCP_FLAGS.SYN })));
    frames.push(frame(t + 0.001, dst, FANOUT_SOURCE, tcp({ srcPort: 445, dstPort: 40000 + i, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK })));
    t += 0.05;
  }
  frames.push(frame(t, DNS_CLIENT, DNS_SERVER, udp({ srcPort: 53000, dstPort: 53, payload: dnsMessage(7, BAD_NAME, false) })));
  frames.push(frame(t + 0.002, DNS_SERVER, DNS_CLIENT, udp({ srcPort: 53, dstPort: 53000, payload: dnsMessage(7, BAD_NAME, true) })));
  t += 0.1;
  frames.push(frame(t, DNS_CLIENT, LISTED_SERVER, tcp({ srcPort: 51000, dstPort: 443, flags: TCP_FLAGS.SYN })));
  frames.push(frame(t + 0.01, LISTED_SERVER, DNS_CLIENT, tcp({ srcPort: 443, dstPort: 51000, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK })));
  for (let i = 0; i < 3; i++) {
    t += 0.2;
    frames.push(frame(t, '10.0.0.9', '10.0.0.80', tcp({ srcPort: 45000 + i, dstPort: 80, flags: TCP_FLAGS.SYN })));
    frames.push(frame(t + 0.001, '10.0.0.80', '10.0.0.9', tcp({ srcPort: 80, dstPort: 45000 + i, flags: TCP_FLAGS.RST | TCP_FLAGS.ACK })));
  }
  writeFileSync(path, pcap({ linktype: LINKTYPE.ETHERNET }, frames));
  return targets;
}
