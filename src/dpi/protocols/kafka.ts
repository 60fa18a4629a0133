// Apache Kafka's wire protocol (kafka.apache.org/protocol, "Messages"): every request is a 4-byte
// big-endian size (the bytes that follow), then the request header: int16 api_key, int16
// api_version, int32 correlation_id and the nullable string client_id (int16 length, -1 for null;
// header v2 adds tagged fields after it). The response echoes the correlation id right after its
// own size. Kafka over TLS (9093, or any listener with SSL) is the TLS dissector's.
//
// A request header is a handful of small integers after a length: plausible in many binary
// protocols. So on the broker's well-known port (9092) a well-formed request decides; on any other
// port the request only marks the flow, and it is Kafka when the server's first payload is a
// response carrying the same correlation id.
import { isPrintable, u16 } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

/** Highest api_key accepted (Kafka 4.0 defines keys up to about 92). */
const MAX_API_KEY = 127;
/** Highest api_version accepted (Fetch, the most revised, is at 17 in Kafka 4.0). */
const MAX_API_VERSION = 31;
/** Largest request accepted (the broker's socket.request.max.bytes defaults to 100 MiB). */
const MAX_SIZE = 100 * 1024 * 1024;
/** Segments shorter than this end their message (the smallest MSS in use is 536). */
const FULL_SEGMENT = 512;
/** Client id bytes checked for printable text. */
const CLIENT_ID_CHECK = 64;

/**
 * The correlation id of a well-formed request starting the segment, or -1. The request may run
 * past the segment (a large Produce) but not stop short of it.
 */
function request(buf: Buffer, off: number, len: number): number {
  if (len < 14) return -1;
  const size = buf.readUInt32BE(off);
  // A request longer than the segment continues in the next: the segment is then a full one.
  if (size < 10 || size > MAX_SIZE || size + 4 < len || (size + 4 > len && len < FULL_SEGMENT)) return -1;
  const apiKey = u16(buf, off + 4);
  const apiVersion = u16(buf, off + 6);
  const correlationId = buf.readInt32BE(off + 8);
  if (apiKey > MAX_API_KEY || apiVersion > MAX_API_VERSION || correlationId < 0) return -1;
  // client_id: null, or a string inside the request, printable where this segment has it. Clients
  // name themselves ("rdkafka", "producer-1", "console-producer"): an empty one is rejected, as
  // other protocols' zeros there are common (SMPP's command_status and sequence number).
  const idLen = u16(buf, off + 12);
  if (idLen === 0xffff) return correlationId;
  if (idLen === 0 || 14 + idLen > size + 4) return -1;
  const idEnd = Math.min(off + 14 + idLen, off + len, off + 14 + CLIENT_ID_CHECK);
  return isPrintable(buf, off + 14, idEnd) ? correlationId : -1;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (ctx.serverPort === 9092) {
    // The broker's payloads (a capture that starts after the request) say too little on their own.
    if (!ctx.fromClient) return MORE;
    return request(buf, off, len) >= 0 ? MATCH : NO;
  }
  if (ctx.fromClient) {
    if (ctx.dirPackets > 1) {
      // A second request before the first response: keep waiting for the response.
      return ctx.state() !== null ? MORE : NO;
    }
    const correlationId = request(buf, off, len);
    if (correlationId < 0) return NO;
    // The state is the correlation id of the request the flow waits the answer to.
    ctx.setState(correlationId);
    return MORE;
  }
  const pending = ctx.state();
  if (typeof pending !== 'number') return NO;
  ctx.setState(null);
  // Response: size (at least the correlation id; the body may run past the segment), correlation id.
  if (len < 8) return NO;
  const size = buf.readUInt32BE(off);
  if (size < 4 || size > MAX_SIZE || size + 4 < len) return NO;
  return buf.readInt32BE(off + 4) === pending ? MATCH : NO;
}

export const kafka: Dissector = { app: 'Kafka', transports: TRANSPORT_TCP, ports: [9092], inspect };
