// The flow detail's packet list: which way each packet went, and a payload as hex and ASCII rows
// (as Wireshark's bytes pane shows them). Pure; tested in node (test/web-lib.test.ts).

export interface PacketEnds {
  src: string | null;
  srcPort: number | null;
  dst: string | null;
  dstPort: number | null;
}

export interface FlowEnds {
  clientIp: string;
  clientPort: number;
  serverIp: string;
  serverPort: number;
}

/**
 * 'toServer' when the packet went from the flow's client to its server, 'toClient' the other way,
 * null when it matches neither (a non-IP frame). Ports decide when both ends share an address;
 * a packet without ports (a later fragment) goes by its addresses.
 */
export function packetDirection(p: PacketEnds, f: FlowEnds): 'toServer' | 'toClient' | null {
  const matches = (ip: string, port: number, otherIp: string, otherPort: number) =>
    p.src === ip && p.dst === otherIp && (p.srcPort === null || p.srcPort === port) && (p.dstPort === null || p.dstPort === otherPort);
  if (matches(f.clientIp, f.clientPort, f.serverIp, f.serverPort)) return 'toServer';
  if (matches(f.serverIp, f.serverPort, f.clientIp, f.clientPort)) return 'toClient';
  return null;
}

export interface HexRow {
  /** Offset of the row's first byte, 4 hex digits. */
  offset: string;
  /** Up to 16 bytes as hex pairs, a wider gap after the eighth. */
  hex: string;
  /** The same bytes as ASCII, '.' for what is not printable. */
  ascii: string;
}

/** Rows of 16 bytes of `hex` (lower- or upper-case pairs). */
export function hexRows(hex: string): HexRow[] {
  const rows: HexRow[] = [];
  for (let at = 0; at < hex.length; at += 32) {
    const pairs = hex.slice(at, at + 32).match(/../g) ?? [];
    const bytes = pairs.map((h) => Number.parseInt(h, 16));
    rows.push({
      offset: (at / 2).toString(16).padStart(4, '0'),
      hex: `${pairs.slice(0, 8).join(' ')}${pairs.length > 8 ? `  ${pairs.slice(8).join(' ')}` : ''}`,
      ascii: bytes.map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join(''),
    });
  }
  return rows;
}

/** µs since the epoch of the API's DateTime (ISO 8601 in UTC with up to 6 decimals). */
export function isoMicros(iso: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!m) return Date.parse(iso) * 1000;
  return Date.parse(`${m[1]}Z`) * 1000 + Number((m[2] ?? '').padEnd(6, '0'));
}

/** A packet's time after the flow's first packet, as +1.234567 s (to the µs). */
export function relativeTime(ts: string, first: string): string {
  return `+${((isoMicros(ts) - isoMicros(first)) / 1e6).toFixed(6)} s`;
}
