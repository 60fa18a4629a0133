// Bounded in-order reassembly of the first bytes of one direction of a flow, for messages that
// span several packets (a TLS ClientHello with many extensions or a post-quantum key share).
// The buffer is allocated once per flow direction that needs it, never per packet.
import type { DpiContext, FlowExtra } from './types.js';

/** The most bytes kept per flow direction. */
export const REASSEMBLY_MAX = 16384;
/** The first allocation: enough for a typical ClientHello (a post-quantum key share needs more). */
const REASSEMBLY_START = 4096;

// A flow that never reassembles (nearly every one) shares these frozen "nothing held" values
// instead of three arrays of its own; appendSegment gives the flow its own before its first write.
const IDLE_BUF = Object.freeze([null, null]) as unknown as FlowExtra['buf'];
const IDLE_LEN = Object.freeze([0, 0]) as unknown as FlowExtra['bufLen'];
const IDLE_SEQ = Object.freeze([-1, -1]) as unknown as FlowExtra['nextSeq'];

/** A flow's extra state, before any dissector wrote to it. */
export function newFlowExtra(): FlowExtra {
  return { serverName: '', info: null, app: '', risks: 0, certNotBefore: 0, certNotAfter: 0, buf: IDLE_BUF, bufLen: IDLE_LEN, nextSeq: IDLE_SEQ, states: null };
}

/**
 * Appends this segment's payload to the direction's buffer, in TCP sequence order: a retransmitted
 * segment is skipped, an overlapping one trimmed. Returns the bytes now held, or -1 when the stream
 * cannot be followed (a gap: a segment is missing) or the cap is reached.
 */
export function appendSegment(ctx: DpiContext, buf: Buffer, off: number, len: number): number {
  const e = ctx.extra();
  if (e.nextSeq === IDLE_SEQ) {
    e.buf = [null, null];
    e.bufLen = [0, 0];
    e.nextSeq = [-1, -1];
  }
  const dir = ctx.fromClient ? 0 : 1;
  let have = e.bufLen[dir];
  let b = e.buf[dir];
  const seq = ctx.tcpSeq;
  if (b === null) {
    if (have < 0) return -1; // given up earlier
    b = Buffer.allocUnsafe(REASSEMBLY_START); // most ClientHellos fit; grown up to the cap when not
    e.buf[dir] = b;
    have = 0;
    e.nextSeq[dir] = seq >= 0 ? (seq + len) % 4294967296 : -1;
  } else if (seq >= 0 && e.nextSeq[dir] >= 0) {
    const delta = (seq - e.nextSeq[dir] + 4294967296) % 4294967296;
    if (delta !== 0) {
      if (delta < 2147483648) return fail(e, dir); // a gap: a segment is missing
      const behind = 4294967296 - delta; // bytes already held
      if (behind >= len) return have; // retransmission
      off += behind;
      len -= behind;
    }
    e.nextSeq[dir] = (e.nextSeq[dir] + len) % 4294967296;
  }
  if (have + len > REASSEMBLY_MAX) return fail(e, dir);
  if (have + len > b.length) {
    const grown = Buffer.allocUnsafe(Math.min(REASSEMBLY_MAX, Math.max(b.length * 2, have + len)));
    b.copy(grown, 0, 0, have);
    b = grown;
    e.buf[dir] = b;
  }
  buf.copy(b, have, off, off + len);
  e.bufLen[dir] = have + len;
  return have + len;
}

function fail(e: ReturnType<DpiContext['extra']>, dir: number): number {
  e.buf[dir] = null;
  e.bufLen[dir] = -1;
  return -1;
}
