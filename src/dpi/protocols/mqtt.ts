// MQTT (3.1, 3.1.1, 5): the client opens with CONNECT (0x10), a variable-length remaining length,
// and the protocol name "MQTT" (or "MQIsdp" in 3.1) with its level. A capture that starts
// mid-session is recognised from two messages that answer each other: PINGREQ and PINGRESP, or a
// PUBLISH at QoS 1 or 2 and the other side's PUBACK or PUBREC carrying its packet identifier.
import { startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** Where the remaining length read last by remainingLength() ends: the message body's start. */
let bodyStart = 0;

/** The fixed header's remaining length (1 to 4 bytes from buf[p], below end), or -1; sets bodyStart. */
function remainingLength(buf: Buffer, p: number, end: number): number {
  let rem = 0;
  for (let i = 0, mul = 1; i < 4 && p < end; i++, mul *= 128) {
    const b = buf[p++];
    rem += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      bodyStart = p;
      return rem;
    }
  }
  return -1;
}

/**
 * The packet identifier of a PUBLISH at QoS 1 or 2 that the segment starts with and holds whole
 * (its remaining length fits in it), else -1.
 */
function publishId(buf: Buffer, off: number, len: number): number {
  const h = buf[off];
  const qos = (h >> 1) & 3;
  if (len < 7 || h >> 4 !== 3 || (qos !== 1 && qos !== 2)) return -1;
  const rem = remainingLength(buf, off + 1, off + len);
  const p = bodyStart;
  const end = p + rem;
  const topicLen = (buf[p] << 8) | buf[p + 1];
  // Topic (at least one character), then the 2-byte identifier, within the message and the segment.
  if (rem < 0 || end > off + len || topicLen === 0 || p + 2 + topicLen + 2 > end) return -1;
  const id = (buf[p + 2 + topicLen] << 8) | buf[p + 3 + topicLen];
  return id === 0 ? -1 : id;
}

/**
 * The dissector's state for a flow: the answer it waits for from the other side,
 * (sender's direction << 17) | (PUBLISH ? 1 << 16 : 0) | packet identifier; a PINGREQ waits for
 * PINGRESP, a PUBLISH for PUBACK or PUBREC with its identifier.
 */
const PUBLISHED = 1 << 16;

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const dir = ctx.fromClient ? 1 : 0;
  const waiting = ctx.state() as number | null;
  const published = waiting !== null && (waiting & PUBLISHED) !== 0;
  if (waiting !== null && waiting >> 17 !== dir) {
    if (
      published
        ? len === 4 && (buf[off] === 0x40 || buf[off] === 0x50) && buf[off + 1] === 2 && (waiting & 0xffff) === ((buf[off + 2] << 8) | buf[off + 3])
        : len === 2 && buf[off] === 0xd0 && buf[off + 1] === 0
    )
      return MATCH;
  }
  const id = publishId(buf, off, len);
  if (id > 0) {
    ctx.setState((dir << 17) | PUBLISHED | id);
    return MORE;
  }
  // A capture that starts mid-session: PINGREQ (c0 00) answered by PINGRESP (d0 00).
  if (ctx.fromClient && len === 2 && buf[off] === 0xc0 && buf[off + 1] === 0) {
    ctx.setState(dir << 17);
    return MORE;
  }
  if (!ctx.fromClient) return ctx.dirPackets >= 2 && !published ? NO : MORE;
  if (len < 12 || buf[off] !== 0x10) return published ? MORE : NO;
  const rem = remainingLength(buf, off + 1, off + len);
  if (rem < 10) return NO;
  const p = bodyStart;
  const nameLen = (buf[p] << 8) | buf[p + 1];
  const name = p + 2;
  const isMqtt = nameLen === 4 && startsWith(buf, name, off + len - name, 'MQTT');
  const isOld = nameLen === 6 && startsWith(buf, name, off + len - name, 'MQIsdp');
  if (!isMqtt && !isOld) return NO;
  ctx.extra().info = { level: buf[name + nameLen] };
  return MATCH;
}

export const mqtt: Dissector = { app: 'MQTT', transports: TRANSPORT_TCP, ports: [1883, 8883], inspect };
