// The contract between the DPI engine and its dissectors. A dissector looks at one transport
// payload at a time (the first few of each direction of a flow) and says whether the flow is its
// protocol, is not, or cannot tell yet. It reports what it extracted through the context, so the
// engine owns all per-flow state and a dissector is a plain object without per-flow allocation.

/** The dissector cannot tell yet: call it again with the next payload. */
export const MORE = 0;
/** The flow is this protocol (the engine stops inspecting it). */
export const MATCH = 1;
/** The flow is not this protocol: never call this dissector on it again. */
export const NO = 2;
/** The payload looks like this protocol but is not conclusive: keep looking; if nothing else matches, it is a guess. */
export const LIKELY = 3;
/**
 * The flow is this protocol, but call this dissector (only it) again with the next payloads, within
 * the packet bound, for details still to come (the DNS response code, the server's SSH banner).
 */
export const FOLLOW = 4;
export type Verdict = typeof MORE | typeof MATCH | typeof NO | typeof LIKELY | typeof FOLLOW;

export const TRANSPORT_TCP = 1;
export const TRANSPORT_UDP = 2;
export const TRANSPORT_BOTH = TRANSPORT_TCP | TRANSPORT_UDP;

/** Where the per-flow state of stream reassembly and results lives; created only for flows that need it. */
export interface FlowExtra {
  serverName: string;
  /** Protocol details (JA4, ALPN, user agent...), stored as one JSON string column. */
  info: Record<string, string | number> | null;
  /** App name a dissector chose instead of its default (e.g. TLS on port 993 is IMAPS). */
  app: string;
  /** RISK_* bits (risks.ts) a dissector found. */
  risks: number;
  /** Validity of the server's TLS certificate (ms since the epoch; 0 when none was seen): the engine judges it against the flow's time. */
  certNotBefore: number;
  certNotAfter: number;
  /**
   * Reassembly buffers per direction (TLS ClientHello over several segments, QUIC CRYPTO frames).
   * These three are shared and frozen until appendSegment gives the flow its own: write them after it only.
   */
  buf: [Buffer | null, Buffer | null];
  bufLen: [number, number];
  /** Next expected TCP sequence number per direction, -1 before the first reassembled segment. */
  nextSeq: [number, number];
  /**
   * Each dissector's own state for the flow, by its index in the engine's list (QUIC keeps its
   * CRYPTO ranges there); null until one stores something. Dissectors reach theirs through
   * DpiContext.state() and setState(), so that one's state is never taken for another's.
   */
  states: unknown[] | null;
}

/** What a dissector sees of the packet and flow; one instance, reused for every call. */
export interface DpiContext {
  /** TRANSPORT_TCP or TRANSPORT_UDP. */
  transport: number;
  fromClient: boolean;
  clientPort: number;
  serverPort: number;
  /** TCP sequence number of this segment (unsigned 32-bit), -1 when unknown or not TCP. */
  tcpSeq: number;
  /** Payload packets seen so far in this direction, this one included (1 = first). */
  dirPackets: number;
  /** The flow's extra state, created on first use. */
  extra(): FlowExtra;
  /** Whether extra() was ever called for this flow (peek without creating). */
  hasExtra(): boolean;
  /** The calling dissector's state for this flow, null until it stores some (peeks without creating extra()). */
  state(): unknown;
  /** Stores the calling dissector's state for this flow (null clears it). */
  setState(value: unknown): void;
  /** The flow's client and server IP addresses, null when the engine's user gave no way to them (DpiEngine.addresses). */
  addresses(): readonly [string, string] | null;
}

export interface Dissector {
  /** Protocol name as nDPI spells the master protocol (TLS, HTTP, DNS, FTP_CONTROL, SMBv23...). */
  readonly app: string;
  /** TRANSPORT_* mask of the transports it applies to. */
  readonly transports: number;
  /** Well-known server ports: tried first on them, and the fallback label when nothing matched. */
  readonly ports: readonly number[];
  /** Ports on which `ports` applies to UDP only / TCP only, when they differ. Default: both. */
  readonly udpPorts?: readonly number[];
  /** The fallback label on some of `ports` when it is not `app` (TLS on 993 is IMAPS, as nDPI names it). */
  readonly portApps?: Readonly<Record<number, string>>;
  /**
   * A peer-to-peer protocol: its peers try many other peers, most of which are gone, so its flows
   * are not scan probes (the scan detectors skip flows DPI gave to such a protocol).
   */
  readonly peerToPeer?: boolean;
  /** Inspects one payload (buf[off, off+len)). Must not throw on any bytes and must run in bounded time. */
  inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict;
}
