// WireGuard (the WireGuard whitepaper, section 5.4 "Messages") over UDP, on any port (51820 is only
// the default). Every message starts with a type byte 1..4 and three zero reserved bytes, and the
// sizes are fixed: handshake initiation (1) 148 bytes, handshake response (2) 92, cookie reply (3)
// 64; transport data (4) is 16 bytes of header (receiver index, 64-bit little-endian counter) and
// an AEAD ciphertext, 32 bytes at least and a multiple of 16.
//
// An initiation of exactly 148 bytes with a non-zero sender index and ephemeral key, or a response
// of exactly 92 with non-zero indexes and ephemeral key, is WireGuard alone. Some providers extend
// the handshake (TunnelBear's initiation is 204 bytes, its response 100): a longer initiation
// followed by a response (or cookie reply) whose receiver index is the initiation's sender index
// is WireGuard too. Transport data alone is four bytes and a size rule, too little for a dissector
// tried on every UDP payload (little-endian protocols whose first word is 4 abound): after a
// handshake it is WireGuard; otherwise the flow is when a second data message of the same direction
// has the same receiver index and a counter a little higher (nDPI too waits for more than one:
// mullvad_wireguard.pcap, captured mid-session on port 5060, is data only).
import { u32 } from '../bytes.js';
import { MATCH, MORE, NO, TRANSPORT_UDP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const WIREGUARD_PORT = 51820;

const INITIATION = 1;
const RESPONSE = 2;
const COOKIE_REPLY = 3;
const TRANSPORT_DATA = 4;

const INITIATION_SIZE = 148;
const RESPONSE_SIZE = 92;
const COOKIE_REPLY_SIZE = 64;
const MIN_DATA_SIZE = 32;
/** The largest extended handshake message accepted (TunnelBear adds 56 bytes to the initiation). */
const MAX_HANDSHAKE_SIZE = 512;
/** How far the counter may advance between two data messages of a direction seen in a row. */
const MAX_COUNTER_STEP = 1024;

/**
 * The dissector's state for the flow: [initiation's sender index (0 none), handshake seen (1), then
 * per direction (client, server): receiver index, counter low word, counter high word, seen (1)].
 * Only flows whose payload already passed the type and size checks get one.
 */
function stateOf(ctx: DpiContext): Uint32Array {
  let st = ctx.state() as Uint32Array | null;
  if (st === null) {
    st = new Uint32Array(10);
    ctx.setState(st);
  }
  return st;
}

/** Little-endian 32-bit word. */
function le32(buf: Buffer, off: number): number {
  return buf[off] + (buf[off + 1] << 8) + (buf[off + 2] << 16) + buf[off + 3] * 0x1000000;
}

function nonZero(buf: Buffer, off: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (buf[off + i] !== 0) return true;
  return false;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (len < MIN_DATA_SIZE || buf[off + 1] !== 0 || buf[off + 2] !== 0 || buf[off + 3] !== 0) return NO;
  const type = buf[off];
  if (type === TRANSPORT_DATA) return (len & 15) === 0 ? inspectData(ctx, buf, off) : NO;
  if (type === INITIATION) {
    if (len < INITIATION_SIZE || len > MAX_HANDSHAKE_SIZE) return NO;
    // Sender index, then the unencrypted ephemeral public key.
    const sender = u32(buf, off + 4);
    if (sender === 0 || !nonZero(buf, off + 8, 32)) return NO;
    if (len === INITIATION_SIZE) return MATCH;
    const st = stateOf(ctx);
    st[0] = sender;
    st[1] = 1;
    return MORE;
  }
  if (type === RESPONSE) {
    if (len < RESPONSE_SIZE || len > MAX_HANDSHAKE_SIZE) return NO;
    // Sender and receiver index, then the unencrypted ephemeral public key.
    const sender = u32(buf, off + 4);
    const receiver = u32(buf, off + 8);
    if (sender === 0 || receiver === 0 || !nonZero(buf, off + 12, 32)) return NO;
    if (len === RESPONSE_SIZE) return MATCH;
    return answersInitiation(ctx, receiver) ? MATCH : NO;
  }
  if (type === COOKIE_REPLY) {
    if (len !== COOKIE_REPLY_SIZE) return NO;
    // An answer to an initiation of the flow, or (under load, for all we know) to one before it.
    return answersInitiation(ctx, u32(buf, off + 4)) ? MATCH : MORE;
  }
  return NO;
}

/** Whether the flow's initiation (an extended one: an exact one matched already) had this sender index. */
function answersInitiation(ctx: DpiContext, receiver: number): boolean {
  const st = ctx.state() as Uint32Array | null;
  return st !== null && st[0] !== 0 && st[0] === receiver;
}

function inspectData(ctx: DpiContext, buf: Buffer, off: number): Verdict {
  const receiver = u32(buf, off + 4);
  const lo = le32(buf, off + 8);
  const hi = le32(buf, off + 12);
  const st = stateOf(ctx);
  if (st[1] === 1) return MATCH; // after a handshake of the flow
  const i = ctx.fromClient ? 2 : 6;
  if (st[i + 3] === 1) {
    if (st[i] !== receiver) return NO;
    if (st[i + 2] === hi) {
      const step = lo - st[i + 1];
      if (step > 0 && step <= MAX_COUNTER_STEP) return MATCH;
    }
  }
  st[i] = receiver;
  st[i + 1] = lo;
  st[i + 2] = hi;
  st[i + 3] = 1;
  return MORE;
}

export const wireguard: Dissector = { app: 'WireGuard', transports: TRANSPORT_UDP, ports: [WIREGUARD_PORT], inspect };
