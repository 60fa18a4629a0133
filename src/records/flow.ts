// The flow segment record (see FlowRecord) and its summary (FlowSummary): one table drives both
// stores, the API's Flow object and `flowlens export flows`.
import { col, defineRecord, type RecordOf, type SummaryOf } from './define.js';

/** Transport names used in records and filters; anything else is `ip-<protocol number>`. */
export type Transport = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'sctp' | string;

/** TCP connection state (empty for other transports). */
export const TCP_STATES = ['attempted', 'established', 'closed', 'reset', ''] as const;
export type TcpState = (typeof TCP_STATES)[number];

/**
 * Why a segment was exported (IPFIX flowEndReason): `active-timeout` while the flow lasts, else why
 * it ended: `idle` (quiet for its idle timeout), `fin` / `rst` (the TCP connection had closed or
 * been reset), `shutdown` (end of input, or capture stopped), `evicted` (the flow table needed its
 * slot). '' in live updates of a flow that is still running.
 */
export const END_REASONS = ['idle', 'active-timeout', 'fin', 'rst', 'shutdown', 'evicted', ''] as const;
export type EndReason = (typeof END_REASONS)[number];

/** Which end Zeek's conn.log calls the originator ('' before a flow is described). */
export const ORIGINATORS = ['client', 'server', ''] as const;
export type Originator = (typeof ORIGINATORS)[number];

/**
 * The learned classifier's categories (src/classify; nDPI's categories map onto them in
 * test/dpi/ml-data.ts), and '' for no prediction.
 */
export const ML_CATEGORIES = ['web', 'video-streaming', 'chat-voip', 'file-transfer', 'vpn-tunnel', 'p2p', 'gaming', 'system', 'other'] as const;
export type MlCategory = (typeof ML_CATEGORIES)[number];
export const PREDICTED_CATEGORIES = [...ML_CATEGORIES, ''] as const;
export type PredictedCategory = (typeof PREDICTED_CATEGORIES)[number];

/**
 * One segment of a flow: the traffic a flow carried between two exports. A flow is exported
 * when it ends (idle timeout, FIN/RST, end of input) and, while it lasts, every active-timeout
 * period, so that long flows land in the interval in which their traffic was sent (NetFlow style).
 * Summing the segments of one flowId gives the whole flow (the combine rules).
 * Column order is the tables' (and the DuckDB appender's): new columns go at the end, `added`.
 */
export const FLOW = defineRecord(
  'flows',
  {
    /** Start of this segment: the time of its first packet (µs). Designated timestamp. */
    ts: col.time({ designated: true, gql: false, export: false }),
    /** Stable id of the flow across its segments (16 hex chars). (ts, flowId) is unique. */
    flowId: col.str({ combine: 'key', gql: { name: 'id', type: 'ID', description: 'Stable flow id (16 hex digits).' } }),
    /** Worker node and interface (or file) that saw it; '' when not set. */
    node: col.str({ combine: 'first', questdb: 'SYMBOL', gql: { nullable: true } }),
    iface: col.str({ combine: 'first', questdb: 'SYMBOL', gql: { nullable: true, description: 'Interface, or file name for imports.' } }),
    /** First and last packet of the whole flow so far (µs). */
    firstSeen: col.time({ combine: 'min' }),
    lastSeen: col.time({ combine: 'max' }),
    transport: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      gql: { description: 'tcp, udp, icmp, icmpv6, sctp or ip-<protocol number>.' },
    }),
    ipProto: col.u8({ combine: 'first' }),
    clientIp: col.str({ combine: 'first', ip: true }),
    clientPort: col.u16({ combine: 'first' }),
    serverIp: col.str({ combine: 'first', ip: true }),
    serverPort: col.u16({ combine: 'first' }),
    /** Counts of this segment only. Bytes are frames' original wire lengths. */
    clientPackets: col.counter({ combine: 'sum' }),
    clientBytes: col.counter({ combine: 'sum' }),
    serverPackets: col.counter({ combine: 'sum' }),
    serverBytes: col.counter({ combine: 'sum' }),
    /** TCP flags seen so far per direction (bit mask, FIN=0x01 SYN=0x02 RST=0x04 PSH=0x08 ACK=0x10 URG=0x20 ECE=0x40 CWR=0x80). */
    clientTcpFlags: col.u8({ combine: 'bitOr' }),
    serverTcpFlags: col.u8({ combine: 'bitOr' }),
    /** State as of the latest segment. */
    tcpState: col.str({
      combine: 'latest',
      questdb: 'SYMBOL',
      values: TCP_STATES,
      gql: { nullable: true, description: 'attempted, established, closed or reset; null for other transports.' },
    }),
    /** True on the flow's last segment. */
    final: col.bool({ gql: false, export: false }),
    /** Application protocol and server name (DPI; '' until identified). */
    app: col.str({
      combine: 'latestNonEmpty',
      questdb: 'SYMBOL',
      gql: { nullable: true, description: "Application protocol (nDPI's master protocol names: TLS, HTTP, DNS, QUIC, SSH...), null until identified." },
    }),
    serverName: col.str({
      combine: 'latestNonEmpty',
      gql: { nullable: true, description: 'TLS/QUIC SNI, HTTP Host, DNS query name, DHCP host name; null when the protocol carries none.' },
    }),
    /** How `app` was found: 'dpi' (payload), 'guess' (payload looked like it), 'port' (well-known port), 'unknown'. */
    confidence: col.str({
      combine: 'latestNonEmpty',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: 'How app was found: dpi (payload), guess (payload looked like it), port (well-known port) or unknown.' },
    }),
    /** The first frames' sizes, + client to server, - server to client: '+74 -74 +66 +583 -1434' (they only grow: latest). */
    firstPackets: col.str({
      combine: 'latest',
      added: true,
      gql: { nullable: true, description: "The first frames' sizes in bytes, + client to server and - server to client: '+74 -74 +66 +583 -1434'." },
    }),
    /** Protocol details as a JSON object ('' when none): TLS ja4/alpn/version, HTTP method/userAgent, DNS qtype/rcode... */
    appInfo: col.str({
      combine: 'latestNonEmpty',
      added: true,
      gql: {
        nullable: true,
        description: 'Protocol details as a JSON object: TLS ja4, alpn, version; HTTP method, userAgent; DNS qtype, rcode; QUIC quicVersion...',
      },
    }),
    /** lastSeen - firstSeen of the flow so far (µs). */
    duration: col.counter({
      combine: 'max',
      added: true,
      gql: { type: 'Float', description: 'Microseconds from the first to the last packet of the flow so far (an integer).' },
    }),
    endReason: col.str({
      combine: 'latest',
      questdb: 'SYMBOL',
      values: END_REASONS,
      added: true,
      gql: {
        nullable: true,
        description:
          "Why the flow's latest segment was exported: idle, fin, rst, shutdown (end of input or capture stopped) or evicted when the flow ended; active-timeout while it lasts; null in live updates of a running flow.",
      },
    }),
    /**
     * The run that wrote the row (src/capture/source.ts): an import's names the content it read, a
     * live capture's is new at every start. Rows of one source replace each other (a re-import, a
     * replayed batch); rows of different sources add up.
     */
    source: col.str({ questdb: 'SYMBOL', added: true, gql: false, export: false }),
    /** Community ID v1 of the flow (seed 0, base64; src/enrich/community-id.ts): the key other tools log for it. */
    communityId: col.str({
      combine: 'first',
      added: true,
      gql: { nullable: true, description: "Community ID v1 (seed 0, base64): the same flow's key in Zeek, Suricata, Arkime, Wireshark and others." },
    }),
    /** Which end Zeek calls the originator (its rules differ from flowlens's client choice; src/flow/zeek-conn.ts). */
    originator: col.str({
      combine: 'latest',
      questdb: 'SYMBOL',
      values: ORIGINATORS,
      added: true,
      gql: { nullable: true, description: "Which end Zeek's conn.log calls the originator: client or server." },
    }),
    /** Zeek's conn_state as of the latest segment: S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR or OTH. */
    connState: col.str({
      combine: 'latest',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: "Zeek's conn_state: S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR or OTH." },
    }),
    /** Zeek's history letters so far (upper case: the originator's; they only grow: latest). */
    history: col.str({
      combine: 'latest',
      added: true,
      gql: {
        nullable: true,
        description:
          "Zeek's connection history, upper case for the originator: S SYN, H SYN-ACK, A ACK, D data, F FIN, R RST, T retransmission, G gap, W zero window, I/Q odd flags, ^ roles flipped.",
      },
    }),
    /** Payload bytes each end sent so far: TCP's from sequence numbers (gaps included), UDP's and ICMP's summed. */
    clientPayloadBytes: col.counter({
      combine: 'max',
      added: true,
      gql: { description: "Payload bytes the client sent so far (TCP: from sequence numbers, so gaps count; Zeek's orig_bytes or resp_bytes)." },
    }),
    serverPayloadBytes: col.counter({ combine: 'max', added: true, gql: { description: 'Payload bytes the server sent so far (see clientPayloadBytes).' } }),
    /** IP bytes each end sent so far (IP total lengths; Zeek's orig_ip_bytes / resp_ip_bytes). */
    clientIpBytes: col.counter({ combine: 'max', added: true, gql: { description: 'Sum of the IP total lengths of the packets the client sent so far.' } }),
    serverIpBytes: col.counter({ combine: 'max', added: true, gql: { description: 'Sum of the IP total lengths of the packets the server sent so far.' } }),
    /** TCP bytes in sequence ranges that were never captured, so far (Zeek's missed_bytes). */
    missedBytes: col.counter({ combine: 'max', added: true, gql: { description: 'TCP payload bytes in sequence gaps that were never captured, so far.' } }),
    /** Zeek's duration so far (µs): to the last packet that carried something, not the ACKs after both FINs. */
    zeekDuration: col.counter({
      combine: 'max',
      added: true,
      gql: { type: 'Float', description: "Zeek's duration in microseconds: like duration, without the bare ACKs after both ends closed." },
    }),
    /** Type and code of the ICMP message that started the flow (0 for other transports): Zeek's ICMP ports derive from them. */
    icmpType: col.u8({ combine: 'first', added: true, gql: { description: 'ICMP type of the message that started the flow (0 for other transports).' } }),
    icmpCode: col.u8({ combine: 'first', added: true, gql: { description: 'ICMP code of the message that started the flow (0 for other transports).' } }),
    /** Country (ISO 3166 alpha-2) of each end from the geo database (src/enrich/geo.ts); '' when unknown or special. */
    clientCountry: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: "The client's country (ISO 3166 alpha-2); null when unknown or a private or special address." },
    }),
    serverCountry: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: "The server's country (ISO 3166 alpha-2); null when unknown or a private or special address." },
    }),
    /** AS number of each end (0 when unknown). */
    clientAsn: col.counter({ combine: 'first', added: true, gql: { nullable: true, description: "The client's AS number; null when unknown." } }),
    serverAsn: col.counter({ combine: 'first', added: true, gql: { nullable: true, description: "The server's AS number; null when unknown." } }),
    clientAsOrg: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: "The client's AS organisation; null when unknown." },
    }),
    serverAsOrg: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: "The server's AS organisation; null when unknown." },
    }),
    /** Name of each end's network: the named network (src/enrich/networks.ts), else its special range ('private'...), else ''. */
    clientNetwork: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      added: true,
      gql: {
        nullable: true,
        description: "The client's named network (--networks), else its special range (private, loopback, link-local...); null for a public address in none.",
      },
    }),
    serverNetwork: col.str({
      combine: 'first',
      questdb: 'SYMBOL',
      added: true,
      gql: { nullable: true, description: "The server's named network, else its special range; null for a public address in none." },
    }),
    /** nDPI-style flow risks, comma-separated (src/dpi/risks.ts: RISK_NAMES); '' when none. They only grow: latestNonEmpty. */
    risks: col.str({
      combine: 'latestNonEmpty',
      added: true,
      gql: {
        nullable: true,
        description:
          'Flow risks as nDPI names them, comma-separated: Known Proto on Non Std Port, Clear-Text Credentials, Obsolete TLS (v1.1 or older), SSH Obsolete Cli Vers/Cipher, SSH Obsolete Ser Vers/Cipher, TLS Cert Expired, TLS Cert Not Yet Valid, Self-signed Cert, TLS Cert Mismatch, TLS Weak Cert Key or Signature; null when none.',
      },
    }),
    /**
     * The learned classifier's guess (src/classify), made only where DPI named no application
     * (app ''), from the first payload packets' sizes, directions and timing with the server port;
     * '' when DPI named one, for flows without payload, and with --no-classify. Never DPI's result.
     * The three combine as the latest segment's: a guess once made stays on every later segment
     * until DPI names the flow, when it goes (and with it from the summed flow), and `latest`
     * columns are read from one packed arg_max, which the flow cache's builds need to stay within
     * DuckDB's memory limit (test/store-pool.test.ts).
     */
    predictedCategory: col.str({
      combine: 'latest',
      questdb: 'SYMBOL',
      values: PREDICTED_CATEGORIES,
      added: true,
      gql: {
        nullable: true,
        description:
          "The learned classifier's category where DPI named no application (web, video-streaming, chat-voip, file-transfer, vpn-tunnel, p2p, gaming, system, other): a prediction from the first packets' sizes and timing and the server port, not DPI's result; null when DPI named the application or no prediction was made.",
      },
    }),
    predictedApp: col.str({
      combine: 'latest',
      questdb: 'SYMBOL',
      added: true,
      gql: {
        nullable: true,
        description:
          "The learned classifier's application where DPI named none, among the applications it was trained on (nDPI's names); null when it names none of them, and wherever predictedCategory is null.",
      },
    }),
    /** Percent, 1-100 with a prediction (0 without): the trees' probability, or the server port's share in training. */
    predictedConfidence: col.u8({
      combine: 'latest',
      added: true,
      gql: {
        nullable: true,
        description:
          "How sure the classifier is of predictedCategory, percent: the model's probability, or where it answers from the server port, that port's share of the category in training, smoothed ((flows in it + 1) / (flows + 9)); null without a prediction.",
      },
    }),
    /**
     * For a flow carried by a tunnel (Zeek's tunnel_parents), comma-separated: the flow ids of the
     * carrying UDP flows (VXLAN, Geneve, GTP-U, Teredo), or for IP-level tunnels (IP-in-IP, GRE,
     * ERSPAN, GRE-in-UDP), which are no flow, an id of the tunnel's address pair; '' otherwise.
     */
    tunnelParents: col.str({
      combine: 'latest',
      added: true,
      gql: {
        nullable: true,
        description:
          'The tunnels that carried this flow, comma-separated: the flow ids of carrying UDP flows (VXLAN, Geneve, GTP-U, Teredo), or for IP-in-IP, GRE and ERSPAN (no flow of their own) an id of the tunnel; null when none.',
      },
    }),
    /**
     * Zeek's earlier connections within this flow, where Zeek's timers end a connection that the
     * flow outlives (an unanswered SYN after 5 s, 5 s after a close, DNS quiet for 10 s): JSON
     * (src/flow/zeek-conn.ts's ZeekSplits) from which the conn.log export writes one row each;
     * '' for a flow that is one Zeek connection (most).
     */
    zeekSplits: col.str({
      combine: 'latest',
      added: true,
      gql: {
        nullable: true,
        description:
          "Zeek's earlier connections within this flow as JSON (earlier: their conn_state, history and counts; current: the last one's), where Zeek's timers end a connection that the flow outlives; null when Zeek sees one connection.",
      },
    }),
  },
  { questdbDedupKeys: ['ts', 'flowId'] },
);

export type FlowRecord = RecordOf<typeof FLOW>;
/** A flow as the API and exports show it: its segments in the queried range summed (FLOW's combine rules). */
export type FlowSummary = SummaryOf<typeof FLOW>;

/** The API's `bytes` of a flow (both directions), also printed by `flowlens export flows`. */
export const flowBytes = (f: { clientBytes: number; serverBytes: number }): number => f.clientBytes + f.serverBytes;
