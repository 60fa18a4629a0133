// MQTT (3.1, 3.1.1, 5): the client opens with CONNECT (0x10), a variable-length remaining length,
// and the protocol name "MQTT" (or "MQIsdp" in 3.1) with its level.
import { startsWith } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
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
  if (!ctx.fromClient) return ctx.dirPackets >= 2 ? NO : MORE;
  if (len < 12 || buf[off] !== 0x10) return NO;
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
