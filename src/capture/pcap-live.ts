// One live libpcap session, through node_pcap's native binding directly rather than its
// PcapSession class: that class allocates an object and emits an EventEmitter event per packet,
// and the capture callback is the one place where every frame passes. The binding calls our
// callback once per frame with the frame and its 16-byte header in two reused buffers.
//
// The BPF filter is compiled by libpcap and attached to the socket (SO_ATTACH_FILTER), so the
// kernel drops non-matching frames before they are copied to us.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface NativeSession {
  open_live(
    device: string,
    filter: string,
    bufferSize: number,
    snapLength: number,
    outfile: string,
    onPacket: () => void,
    monitor: boolean,
    bufferTimeoutMs: number,
    onWarning: (text: string) => void,
    promiscuous: boolean,
  ): string;
  dispatch(buf: Buffer, header: Buffer): number;
  start_polling(): void;
  close(): void;
  stats(): { ps_recv: number; ps_drop: number; ps_ifdrop: number };
  read_callback?: () => void;
}

interface Binding {
  PcapSession: new () => NativeSession;
  findalldevs(): { name: string; addresses?: { addr: string }[]; flags?: string }[];
  lib_version(): string;
}

let binding: Binding | undefined;
function nativeBinding(): Binding {
  binding ??= require('pcap/build/Release/pcap_binding.node') as Binding;
  return binding;
}

export type CaptureErrorKind = 'permission' | 'no-such-device' | 'filter' | 'other';

export class CaptureOpenError extends Error {
  constructor(
    message: string,
    readonly kind: CaptureErrorKind,
  ) {
    super(message);
    this.name = 'CaptureOpenError';
  }
}

/** The fix for missing capture privileges, for error messages. */
export const PRIVILEGE_HINT =
  'Capturing needs root or the CAP_NET_RAW and CAP_NET_ADMIN capabilities: run as root, or grant them to node once with ' +
  '`sudo setcap cap_net_raw,cap_net_admin+eip $(readlink -f $(which node))`';

export interface LiveSessionOptions {
  filter: string;
  snaplen: number;
  promiscuous: boolean;
  bufferBytes: number;
  /** How long the kernel may hold packets before waking us (ms). */
  bufferTimeoutMs: number;
}

export interface CaptureCounters {
  /**
   * Frames libpcap delivered. Not ps_recv: on Linux a frame sent on loopback reaches the packet
   * socket twice (outgoing and incoming) and ps_recv counts both, although libpcap drops the
   * outgoing copy (60 pings on lo were 240 packets instead of 120).
   */
  received: number;
  /** Dropped because the capture buffer was full (ps_drop). */
  dropped: number;
  /** Dropped by the interface or driver (ps_ifdrop; often not reported). */
  ifDropped: number;
}

/** Link-type names the binding returns, as LINKTYPE/DLT numbers the decoders take. */
const LINK_TYPES: Record<string, number> = {
  LINKTYPE_NULL: 0,
  LINKTYPE_ETHERNET: 1,
  LINKTYPE_IEEE802_11_RADIO: 127,
  LINKTYPE_RAW: 12, // the binding reports DLT_RAW, which is 12 on Linux
  LINKTYPE_LINUX_SLL: 113,
};

function linkTypeNumber(name: string): number {
  if (name in LINK_TYPES) return LINK_TYPES[name];
  const m = /Unknown linktype (\d+)/.exec(name);
  return m ? Number(m[1]) : -1;
}

/** Called for every frame: `frame` holds `caplen` bytes and is only valid during the call. */
export type FrameHandler = (frame: Buffer, caplen: number, wirelen: number, tsSec: number, tsUsec: number) => void;

export class LiveSession {
  readonly linkType: number;
  private readonly native: NativeSession;
  private readonly frame: Buffer;
  private readonly header: Buffer;
  private readonly headerWords: Uint32Array;
  private closed = false;
  private last: CaptureCounters = { received: 0, dropped: 0, ifDropped: 0 };
  private delivered = 0;

  /**
   * Opens and activates the capture. Throws CaptureOpenError with a message meant for the user.
   * `onBurst` runs after each batch of frames read in one wake-up.
   */
  constructor(
    readonly iface: string,
    opts: LiveSessionOptions,
    onFrame: FrameHandler,
    onBurst: () => void,
    onWarning: (text: string) => void,
  ) {
    const b = nativeBinding();
    this.native = new b.PcapSession();
    this.frame = Buffer.alloc(opts.snaplen);
    this.header = Buffer.alloc(16);
    // The binding writes the header words in host byte order.
    this.headerWords = new Uint32Array(this.header.buffer, this.header.byteOffset, 4);
    const frame = this.frame;
    const hw = this.headerWords;
    const onPacket = () => {
      if (this.closed) return;
      this.delivered++;
      onFrame(frame, Math.min(hw[2], frame.length), hw[3], hw[0], hw[1]);
    };
    let linkName: string;
    try {
      linkName = this.native.open_live(
        iface,
        opts.filter,
        opts.bufferBytes,
        opts.snaplen,
        '',
        onPacket,
        false,
        opts.bufferTimeoutMs,
        onWarning,
        opts.promiscuous,
      );
    } catch (err) {
      throw classifyOpenError(iface, opts.filter, (err as Error).message);
    }
    this.linkType = linkTypeNumber(linkName);
    const native = this.native;
    native.read_callback = () => {
      // Also after close: the poll is level-triggered, so frames must still be read (and are
      // discarded) until the binding sees the break and closes the handle.
      native.dispatch(frame, this.header);
      if (!this.closed) onBurst();
    };
    native.start_polling();
    // Frames that arrived before polling started would wait for the next one; read them now.
    setImmediate(() => native.read_callback?.());
  }

  /** The frames delivered, and libpcap's cumulative drop counters (ps_* are 32-bit and wrap; kept monotonic here). */
  counters(): CaptureCounters {
    if (this.closed) return this.last;
    const s = this.native.stats();
    const next = (prev: number, raw: number) => prev + (((raw >>> 0) - (prev >>> 0)) >>> 0);
    this.last = {
      received: this.delivered,
      dropped: next(this.last.dropped, s.ps_drop),
      ifDropped: next(this.last.ifDropped, s.ps_ifdrop),
    };
    return this.last;
  }

  /**
   * Reads what is still buffered and stops delivering frames. The binding only releases the
   * handle when a dispatch returns the break (at the next frame after pcap_breakloop), so on a
   * quiet interface the handle stays open until the process exits.
   */
  close(): void {
    if (this.closed) return;
    this.native.read_callback?.();
    this.counters();
    this.closed = true;
    this.native.close();
  }
}

function classifyOpenError(iface: string, filter: string, message: string): CaptureOpenError {
  if (/permission|not permitted|EPERM|EACCES/i.test(message)) {
    return new CaptureOpenError(`cannot capture on ${iface}: ${message}. ${PRIVILEGE_HINT}`, 'permission');
  }
  if (/no such device|doesn't exist|does not exist|not up/i.test(message)) {
    let names = '';
    try {
      names = nativeBinding()
        .findalldevs()
        .map((d) => d.name)
        .filter((n) => n !== 'any' && !/^(nflog|nfqueue|dbus|bluetooth)/.test(n))
        .join(', ');
    } catch {
      // the list is only a hint
    }
    return new CaptureOpenError(`no such interface: ${iface}${names ? ` (interfaces: ${names})` : ''}`, 'no-such-device');
  }
  // The binding compiles the filter after activating the device: other failures with a filter
  // given are the filter's (syntax errors, unknown names).
  if (filter && /filter|syntax|parse|unknown|expression|illegal|invalid|not supported|no such|bad/i.test(message)) {
    return new CaptureOpenError(`invalid capture filter '${filter}': ${message}`, 'filter');
  }
  return new CaptureOpenError(`cannot capture on ${iface}: ${message}`, 'other');
}

/** Capture-capable interfaces (for messages and the default). */
export function listInterfaces(): string[] {
  return nativeBinding()
    .findalldevs()
    .map((d) => d.name);
}
