// The order in which frames were handed to decode workers, so that the one DetectorSet on the main
// thread sees every frame in capture order once the workers hand them back with their flows' facts
// (src/capture/import-parallel.ts, src/capture/live.ts): a scan across many hosts or a distributed
// flood whose packets went to different workers is seen whole.
import { decodePacket } from '../decode/index.js';
import { DecodedPacket } from '../decode/packet.js';
import type { DetectorSet } from '../detect/index.js';
import { D_ARP, D_NONE, tsFromWords } from '../flow/import-worker.js';
import { tagOffset } from './ring.js';

/** Entries of the replay order that are not a worker's frame: the detectors' clock. */
export const ORDER_TICK = -1;
export const ORDER_FINISH = -2;

/** The order frames were handed to workers in (worker index, or ORDER_*), until detection takes them back. */
export class ReplayOrder {
  private who = new Int32Array(1 << 16);
  private ts = new Float64Array(1 << 16);
  /** Where the frame's record is in its file (for the packet index). */
  private recOff = new Float64Array(1 << 16);
  private recLen = new Float64Array(1 << 16);
  private head = 0;
  size = 0;

  push(who: number, ts: number, recOff = 0, recLen = 0): void {
    if (this.size === this.who.length) this.grow();
    const i = (this.head + this.size) & (this.who.length - 1);
    this.who[i] = who;
    this.ts[i] = ts;
    this.recOff[i] = recOff;
    this.recLen[i] = recLen;
    this.size++;
  }

  peekRecOff(): number {
    return this.recOff[this.head];
  }

  peekRecLen(): number {
    return this.recLen[this.head];
  }

  peekWho(): number {
    return this.who[this.head];
  }

  peekTs(): number {
    return this.ts[this.head];
  }

  shift(): void {
    this.head = (this.head + 1) & (this.who.length - 1);
    this.size--;
  }

  private grow(): void {
    const who = new Int32Array(this.who.length * 2);
    const ts = new Float64Array(this.ts.length * 2);
    const recOff = new Float64Array(this.ts.length * 2);
    const recLen = new Float64Array(this.ts.length * 2);
    for (let k = 0; k < this.size; k++) {
      const i = (this.head + k) & (this.who.length - 1);
      who[k] = this.who[i];
      ts[k] = this.ts[i];
      recOff[k] = this.recOff[i];
      recLen[k] = this.recLen[i];
    }
    this.who = who;
    this.ts = ts;
    this.recOff = recOff;
    this.recLen = recLen;
    this.head = 0;
  }
}

/**
 * A detection ring's record handler (RingReader.next/drain) that gives the frame to `detector` with
 * the flags its worker's flow table gave it (the record's iface field: D_NONE, D_ARP or F_* flags).
 */
export function detectorFeed(
  detector: DetectorSet,
): (buf: Buffer, off: number, caplen: number, wirelen: number, tsSec: number, tsUsec: number, linkType: number, code: number) => void {
  const pkt = new DecodedPacket();
  return (buf, off, caplen, wirelen, tsSec, tsUsec, linkType, code) => {
    if (code === D_NONE) return;
    const ts = tsFromWords(tsSec, tsUsec);
    decodePacket(linkType, buf, off, caplen, wirelen, pkt);
    const bytes = Math.max(wirelen, caplen);
    if (code === D_ARP) detector.arp(pkt, buf, ts, bytes);
    else {
      // The frame's flow id follows its bytes (handToDetection).
      const at = tagOffset(off, caplen);
      detector.packet(pkt, buf, ts, bytes, code, buf.readUInt32LE(at), buf.readUInt32LE(at + 4));
    }
  };
}
