// `flowlens export flows --format zeek | zeek-json`: the flows as Zeek's conn.log, which Zeek's
// own tools (zeek-cut), Zui, RITA and SIEM parsers read. The ASCII variant has Zeek's headers
// (#separator, #fields, #types...) and its tab-separated rows; the JSON variant is one object per
// line, as Zeek's LogAscii::use_json writes it (unset fields left out).
//
// Each field keeps Zeek's meaning (src/flow/zeek-conn.ts keeps the state per flow): the originator
// is Zeek's (the `originator` field), ICMP's ports are the type and its counterpart type or the
// code, `duration` leaves out the bare ACKs after both FINs, payload bytes come from TCP sequence
// numbers. Where a flow's id cannot be Zeek's random uid, `uid` is "C" and the flow id in base 62.
import { icmpPorts } from '../enrich/community-id.js';
import type { NamedNetworks } from '../enrich/networks.js';
import { isLocalAddress } from '../enrich/special-ranges.js';
import type { ZeekSplits } from '../flow/zeek-conn.js';
import type { FlowSummary } from '../records/index.js';

/** Zeek's conn.log columns, in its order. */
export const ZEEK_CONN_FIELDS = [
  'ts',
  'uid',
  'id.orig_h',
  'id.orig_p',
  'id.resp_h',
  'id.resp_p',
  'proto',
  'service',
  'duration',
  'orig_bytes',
  'resp_bytes',
  'conn_state',
  'local_orig',
  'local_resp',
  'missed_bytes',
  'history',
  'orig_pkts',
  'orig_ip_bytes',
  'resp_pkts',
  'resp_ip_bytes',
  'tunnel_parents',
  'ip_proto',
] as const;

const ZEEK_CONN_TYPES = [
  'time',
  'string',
  'addr',
  'port',
  'addr',
  'port',
  'enum',
  'string',
  'interval',
  'count',
  'count',
  'string',
  'bool',
  'bool',
  'count',
  'string',
  'count',
  'count',
  'count',
  'count',
  'set[string]',
  'count',
];

type ZeekValue = string | number | boolean | string[] | undefined;
/** One conn.log row; undefined: Zeek's unset field. */
export type ZeekConnRow = Record<(typeof ZEEK_CONN_FIELDS)[number], ZeekValue>;

/** flowlens's DPI names (nDPI's) to the names of Zeek's analysers in `service`. */
const ZEEK_SERVICES: Record<string, string> = {
  TLS: 'ssl',
  DTLS: 'dtls',
  HTTP: 'http',
  HTTP_Proxy: 'http',
  DNS: 'dns',
  MDNS: 'dns',
  LLMNR: 'dns',
  NetBIOS: 'dns',
  SSH: 'ssh',
  FTP_CONTROL: 'ftp',
  FTP_DATA: 'ftp-data',
  SMTP: 'smtp',
  SMTPS: 'ssl',
  IMAP: 'imap',
  IMAPS: 'ssl',
  POP3: 'pop3',
  DHCP: 'dhcp',
  DHCPV6: 'dhcp',
  NTP: 'ntp',
  SNMP: 'snmp',
  Syslog: 'syslog',
  Kerberos: 'krb',
  LDAP: 'ldap',
  MySQL: 'mysql',
  RDP: 'rdp',
  SIP: 'sip',
  SMBv1: 'smb',
  SMBv23: 'smb',
  IRC: 'irc',
  QUIC: 'quic',
  RADIUS: 'radius',
  Modbus: 'modbus',
  DNP3: 'dnp3',
  VXLAN: 'vxlan',
  GTP: 'gtpv1',
  Teredo: 'teredo',
  STUN: 'stun',
  MQTT: 'mqtt',
  Redis: 'redis',
  PostgreSQL: 'postgresql',
  Telnet: 'telnet',
  SOCKS: 'socks',
  NFS: 'nfs',
  RPC: 'rpc',
  IPsec: 'ipsec',
  OpenVPN: 'openvpn',
  WireGuard: 'wireguard',
  XMPP: 'xmpp',
  BitTorrent: 'bittorrent',
};

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** "C" and the 64-bit flow id (16 hex digits) in base 62, like Zeek's uids. */
export function zeekUid(flowId: string): string {
  let n = BigInt(`0x${flowId || '0'}`);
  let out = '';
  do {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  } while (n > 0n);
  return `C${out}`;
}

function zeekProto(transport: string): string {
  if (transport === 'tcp' || transport === 'udp') return transport;
  if (transport === 'icmp' || transport === 'icmpv6') return 'icmp';
  return 'unknown_transport';
}

/**
 * Zeek's `service` for a flow, or undefined. Zeek names a service once its analyser has parsed the
 * protocol, which on TCP takes both ends speaking it: a one-sided TCP flow (a half-duplex capture,
 * an unanswered request) gets none even when flowlens's DPI names its protocol from one side.
 */
export function zeekService(flow: FlowSummary): string | undefined {
  if (!flow.app || (flow.confidence !== 'dpi' && flow.confidence !== 'guess')) return undefined;
  if (flow.transport === 'tcp' && (flow.clientPayloadBytes === 0 || flow.serverPayloadBytes === 0)) return undefined;
  // Zeek's NetBIOS name service (137) is its DNS analyser; the datagram service (138) has none.
  if (flow.app === 'NetBIOS') return flow.serverPort === 137 || flow.clientPort === 137 ? 'dns' : undefined;
  if (flow.app === 'Kerberos') return flow.transport === 'tcp' ? 'krb_tcp' : 'krb';
  return ZEEK_SERVICES[flow.app];
}

/**
 * Zeek's local_orig / local_resp: an address in Site::local_nets. By default that is Zeek's own
 * default, the private and special ranges; with named networks (--networks) it is their prefixes,
 * less those whose role is 'outside'.
 */
export type IsLocal = (ip: string) => boolean;

/** Site::local_nets from named networks: an address in one whose role is not 'outside'. */
export function localByNetworks(networks: NamedNetworks): IsLocal {
  return (ip) => {
    const n = networks.lookup(ip);
    return n !== null && n.role !== 'outside';
  };
}

/** The conn.log row of one flow. */
export function zeekConnRow(flow: FlowSummary, isLocal: IsLocal = isLocalAddress): ZeekConnRow {
  const origIsClient = flow.originator !== 'server';
  const proto = zeekProto(flow.transport);
  let origPort = origIsClient ? flow.clientPort : flow.serverPort;
  let respPort = origIsClient ? flow.serverPort : flow.clientPort;
  if (proto === 'icmp') {
    const p = icmpPorts(flow.transport === 'icmpv6', flow.icmpType, flow.icmpCode);
    origPort = p.sport;
    respPort = p.dport;
  }
  // Zeek gives no ports to other IP protocols (SCTP included: it has no SCTP analyser by default).
  if (proto === 'unknown_transport') origPort = respPort = 0;
  const origHost = origIsClient ? flow.clientIp : flow.serverIp;
  const respHost = origIsClient ? flow.serverIp : flow.clientIp;
  // Zeek leaves duration and the byte counts unset for a connection of no duration (one packet).
  const hasDuration = flow.zeekDuration > 0;
  return {
    ts: flow.firstSeen / 1e6,
    uid: zeekUid(flow.flowId),
    'id.orig_h': origHost,
    'id.orig_p': origPort,
    'id.resp_h': respHost,
    'id.resp_p': respPort,
    proto,
    service: zeekService(flow),
    duration: hasDuration ? flow.zeekDuration / 1e6 : undefined,
    orig_bytes: hasDuration ? (origIsClient ? flow.clientPayloadBytes : flow.serverPayloadBytes) : undefined,
    resp_bytes: hasDuration ? (origIsClient ? flow.serverPayloadBytes : flow.clientPayloadBytes) : undefined,
    conn_state: flow.connState || 'OTH',
    local_orig: isLocal(origHost),
    local_resp: isLocal(respHost),
    missed_bytes: flow.missedBytes,
    history: flow.history || undefined,
    orig_pkts: origIsClient ? flow.clientPackets : flow.serverPackets,
    orig_ip_bytes: origIsClient ? flow.clientIpBytes : flow.serverIpBytes,
    resp_pkts: origIsClient ? flow.serverPackets : flow.clientPackets,
    resp_ip_bytes: origIsClient ? flow.serverIpBytes : flow.clientIpBytes,
    // The carriers' uids, as their own rows give them (Zeek's tunnel_parents).
    tunnel_parents: flow.tunnelParents ? flow.tunnelParents.split(',').map(zeekUid) : undefined,
    ip_proto: flow.ipProto,
  };
}

/**
 * The conn.log rows of one flow: one, or where Zeek's timers ended connections the flow outlived
 * (zeekSplits), one per Zeek connection, earliest first. The later rows' uids are the flow's with
 * a base-62 digit added (the first row's uid is the one tunnel_parents name).
 */
export function zeekConnRows(flow: FlowSummary, isLocal: IsLocal = isLocalAddress): ZeekConnRow[] {
  if (!flow.zeekSplits) return [zeekConnRow(flow, isLocal)];
  const splits = JSON.parse(flow.zeekSplits) as ZeekSplits;
  const connections = splits.current ? [...splits.earlier, splits.current] : splits.earlier;
  const rows = connections.map((c) => zeekConnRow({ ...flow, ...c, firstSeen: c.ts }, isLocal));
  for (let i = 1; i < rows.length; i++) rows[i].uid = `${rows[0].uid}${BASE62[(splits.dropped + i) % 62]}`;
  return rows;
}

/** Zeek's ASCII value: times and intervals with 6 decimals, bools T/F, sets comma-separated, unset '-'. */
function asciiValue(field: string, v: ZeekValue): string {
  if (v === undefined) return '-';
  if (typeof v === 'boolean') return v ? 'T' : 'F';
  if (Array.isArray(v)) return v.length ? v.join(',') : '(empty)';
  if (field === 'ts' || field === 'duration') return (v as number).toFixed(6);
  return escapeAscii(String(v));
}

/** Zeek's ASCII escaping: the separator (a tab), backslashes and other control characters as \xNN. */
function escapeAscii(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out += c < 0x20 || c === 0x7f || c === 0x5c ? `\\x${c.toString(16).padStart(2, '0')}` : text[i];
  }
  return out;
}

/** Zeek's #open / #close time: local-time-free, as YYYY-MM-DD-HH-MM-SS (UTC). */
function headerTime(at: Date): string {
  return at.toISOString().slice(0, 19).replace(/[T:]/g, '-');
}

export function zeekAsciiHeader(at = new Date()): string {
  return [
    '#separator \\x09',
    '#set_separator\t,',
    '#empty_field\t(empty)',
    '#unset_field\t-',
    '#path\tconn',
    `#open\t${headerTime(at)}`,
    `#fields\t${ZEEK_CONN_FIELDS.join('\t')}`,
    `#types\t${ZEEK_CONN_TYPES.join('\t')}`,
    '',
  ].join('\n');
}

export function zeekAsciiFooter(at = new Date()): string {
  return `#close\t${headerTime(at)}\n`;
}

export function zeekAsciiLine(row: ZeekConnRow): string {
  return `${ZEEK_CONN_FIELDS.map((f) => asciiValue(f, row[f])).join('\t')}\n`;
}

/** One JSON line; unset fields are left out, as Zeek's JSON logs do. */
export function zeekJsonLine(row: ZeekConnRow): string {
  const out: Record<string, unknown> = {};
  for (const f of ZEEK_CONN_FIELDS) {
    const v = row[f];
    if (v !== undefined) out[f] = v;
  }
  return `${JSON.stringify(out)}\n`;
}

/** Writes every flow as a conn.log in `format` through `write` (which waits for the stream's drain). */
export async function writeZeekConnLog(
  flows: AsyncIterable<FlowSummary>,
  format: 'zeek' | 'zeek-json',
  write: (text: string) => Promise<void>,
  isLocal: IsLocal = isLocalAddress,
): Promise<void> {
  if (format === 'zeek') await write(zeekAsciiHeader());
  for await (const flow of flows) {
    for (const row of zeekConnRows(flow, isLocal)) await write(format === 'zeek' ? zeekAsciiLine(row) : zeekJsonLine(row));
  }
  if (format === 'zeek') await write(zeekAsciiFooter());
}
