// MQTT (3.1, 3.1.1, 5): the client opens with CONNECT (0x10), a variable-length remaining length,
// and the protocol name "MQTT" (or "MQIsdp" in 3.1) with its level. A capture that starts
// mid-session is recognised from two messages that answer each other: PINGREQ and PINGRESP, or a
// PUBLISH at QoS 1 or 2 and the other side's PUBACK or PUBREC carrying its packet identifier.
import { startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/**
 * The packet identifier of a PUBLISH at QoS 1 or 2 that the segment starts with and holds whole
 * (its remaining length fits in it), else -1.
 */
function publishId(buf: Buffer, off: number, len: number): number {
  const h = buf[off];
  const qos = (h >> 1) & 3;
  if (len < 7 || h >> 4 !== 3 || (qos !== 1 && qos !== 2)) return -1;
  let p = off + 1;
  let rem = 0;
  for (let i = 0, mul = 1; ; i++, mul *= 128) {
    if (i === 4 || p >= off + len) return -1;
    const b = buf[p++];
    rem += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
  }
  const end = p + rem;
  const topicLen = (buf[p] << 8) | buf[p + 1];
  // Topic (at least one character), then the 2-byte identifier, within the message and the segment.
  if (end > off + len || topicLen === 0 || p + 2 + topicLen + 2 > end) return -1;
  const id = (buf[p + 2 + topicLen] << 8) | buf[p + 3 + topicLen];
  return id === 0 ? -1 : id;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  const dir = ctx.fromClient ? 1 : 0;
  // A PUBLISH waiting for its acknowledgement: (direction << 16) | packet identifier.
  const published = ctx.state() as number | null;
  if (published !== null && len === 4 && (buf[off] === 0x40 || buf[off] === 0x50) && buf[off + 1] === 2) {
    if (published >> 16 !== dir && (published & 0xffff) === ((buf[off + 2] << 8) | buf[off + 3])) return MATCH;
  }
  const id = publishId(buf, off, len);
  if (id > 0) {
    ctx.setState((dir << 16) | id);
    return MORE;
  }
  // A capture that starts mid-session: PINGREQ (c0 00) answered by PINGRESP (d0 00).
  if (len === 2 && buf[off + 1] === 0) {
    if (ctx.fromClient && buf[off] === 0xc0) {
      ctx.extra().info = { ping: 1 };
      return MORE;
    }
    if (!ctx.fromClient && buf[off] === 0xd0 && ctx.hasExtra() && ctx.extra().info?.ping === 1) {
      ctx.extra().info = null;
      return MATCH;
    }
  }
  if (!ctx.fromClient) return ctx.dirPackets >= 2 && published === null ? NO : MORE;
  if (len < 12 || buf[off] !== 0x10) return published !== null ? MORE : NO;
  let p = off + 1;
  let rem = 0;
  for (let i = 0, mul = 1; i < 4; i++, mul *= 128) {
    const b = buf[p++];
    rem += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) break;
    if (i === 3) return NO;
  }
  if (rem < 10) return NO;
  const nameLen = (buf[p] << 8) | buf[p + 1];
  const name = p + 2;
  const isMqtt = nameLen === 4 && startsWith(buf, name, off + len - name, 'MQTT');
  const isOld = nameLen === 6 && startsWith(buf, name, off + len - name, 'MQIsdp');
  if (!isMqtt && !isOld) return NO;
  ctx.extra().info = { level: buf[name + nameLen] };
  return MATCH;
}

export const mqtt: Dissector = { app: 'MQTT', transports: TRANSPORT_TCP, ports: [1883, 8883], inspect };
