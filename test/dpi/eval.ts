// Compares flowlens's application protocol identification with nDPI's, flow by flow, over the nDPI
// corpus (../shared/corpus/ndpi: each capture with nDPI's listing of its flows). All captures are
// imported in this one process through the library API into one temporary DuckDB store (one
// import per capture, so that captures do not share flows), then the flows are read back and
// matched to the listing lines by transport and both endpoints.
//
//   npm run eval:dpi            prints the figures and the confusion list
//   import { evaluate } ...     used by test/dpi-accuracy.test.ts
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { importFiles } from '../../src/capture/import.js';
import { openStore } from '../../src/store/index.js';
import type { FlowSummary } from '../../src/store/types.js';

export const CORPUS = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../shared/corpus/ndpi');

/** nDPI master protocol names of the protocols the issue asks for (and their implicit-TLS variants). */
export const EVAL_PROTOCOLS = new Set([
  'TLS',
  'HTTP',
  'DNS',
  'QUIC',
  'SSH',
  'SMTP',
  'SMTPS',
  'IMAP',
  'IMAPS',
  'POP3',
  'POPS',
  'FTP_CONTROL',
  'RDP',
  'SMBv1',
  'SMBv23',
  'NTP',
  'DHCP',
  'MDNS',
  'SSDP',
  'SNMP',
  'SIP',
  'STUN',
  'MQTT',
  'BitTorrent',
  'PostgreSQL',
  'MySQL',
  'Redis',
]);

/**
 * Protocols flowlens identifies beyond the issue's list: reported on their own (agreement, and
 * flows flowlens gives one of them where nDPI says otherwise), outside the figures of the targets.
 * Most of the "otherwise" are UDP flows of gnutella.pcap that nDPI leaves Unknown and flowlens
 * finds to be Gnutella from their Gnutella2 ("GND") packets and 0.6 descriptors.
 */
export const BEYOND_PROTOCOLS = new Set([
  'Service_Location_Protocol',
  'Gnutella',
  'NetBIOS',
  'LLMNR',
  'Kerberos',
  'IPSec',
  'Syslog',
  'DTLS',
  'MsSQL-TDS',
  'Zabbix',
  'Jabber',
  'OpenVPN',
  'LDAP',
  'RTSP',
  'Kafka',
  'WireGuard',
  'Telnet',
  // Named by the IP header's protocol number (IP_PROTOCOL_APPS in src/dpi/engine.ts).
  'ICMP',
  'ICMPV6',
  'IGMP',
  'OSPF',
  'PGM',
  'SCTP',
]);

interface NdpiFlow {
  file: string;
  key: string;
  master: string;
  confidence: string;
  serverName: string;
  ja4: string;
  /** nDPI's flow risks ("[Risk: ** A **** B **]"). */
  risks: string[];
  line: string;
}

export interface ProtocolFigures {
  flows: number;
  agree: number;
}

export interface EvalResult {
  /** nDPI flows labelled with one of EVAL_PROTOCOLS, and how many of them found a flowlens flow. */
  flows: number;
  matched: number;
  agree: number;
  perProtocol: Record<string, ProtocolFigures>;
  /** nDPI flows (of EVAL_PROTOCOLS) with a server name, and how many flowlens named identically. */
  names: number;
  namesIdentical: number;
  /** The same, without the deliberately mutated captures (fuzz-*), where the two read different damaged packets. */
  namesClean: number;
  namesCleanIdentical: number;
  /** Agreeing flows by flowlens's confidence (how much is DPI, how much the port). */
  agreeBy: Record<string, number>;
  /** TLS/QUIC flows where nDPI printed a JA4, and how many flowlens computed identically. */
  ja4: number;
  ja4Identical: number;
  /** Where the two JA4s differ, by part ("SNI flag d -> i"), most frequent first. */
  ja4Differences: [string, number][];
  /** "nDPI master -> flowlens app" with counts, most frequent first. */
  confusion: [string, number][];
  /** BEYOND_PROTOCOLS: agreement per protocol, and flows flowlens gave one of them where nDPI said another protocol ("nDPI -> flowlens"). */
  beyond: Record<string, ProtocolFigures>;
  beyondWrong: [string, number][];
  nameMismatches: string[];
  ja4Mismatches: string[];
  seconds: number;
}

export function canonicalIp(ip: string): string {
  if (!ip.includes(':')) return ip;
  try {
    return new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip;
  }
}

export function splitEndpoint(ep: string): [string, string] {
  if (ep.startsWith('[')) {
    const i = ep.lastIndexOf(']:');
    return [canonicalIp(ep.slice(1, i)), ep.slice(i + 2)];
  }
  const i = ep.lastIndexOf(':');
  return [ep.slice(0, i), ep.slice(i + 1)];
}

/** nDPI's names of IP protocols that flowlens exports as ip-N. */
const NDPI_TRANSPORTS: Record<string, string> = { igmp: 'ip-2', esp: 'ip-50', ah: 'ip-51', gre: 'ip-47', ospf: 'ip-89', pgm: 'ip-113', vrrp: 'ip-112' };

export function flowKey(transport: string, a: string, ap: string, b: string, bp: string): string {
  if (/^\d+$/.test(transport)) transport = `ip-${transport}`;
  transport = NDPI_TRANSPORTS[transport] ?? transport;
  // nDPI prints port 0 for every protocol but TCP and UDP (SCTP included).
  if (transport !== 'tcp' && transport !== 'udp') ap = bp = '0';
  const x = `${a}|${ap}`;
  const y = `${b}|${bp}`;
  return `${transport}/${x < y ? `${x}/${y}` : `${y}/${x}`}`;
}

const LINE = /^\s*\d+\s+(\S+)\s+(\S+)\s+(?:<->|->)\s+(\S+)\s+\[proto: ([^\]]+)\]/;

export function parseListing(file: string, text: string): NdpiFlow[] {
  const out: NdpiFlow[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const [, transport, a, b, proto] = m;
    if (proto.includes(':')) continue; // inside a tunnel flowlens does not decode (GTP...)
    const [ai, ap] = splitEndpoint(a);
    const [bi, bp] = splitEndpoint(b);
    const name = proto.slice(proto.indexOf('/') + 1);
    // "7.295/HTTP.1kxun": master HTTP; "91/TLS": TLS alone.
    const master = /^[\d]+\.[\d]+\//.test(proto) ? name.slice(0, name.indexOf('.')) : name;
    out.push({
      file,
      key: flowKey(transport.toLowerCase(), ai, ap, bi, bp),
      master,
      confidence: /\[Confidence: ([^\]]+)\]/.exec(line)?.[1] ?? '',
      serverName: /\[Hostname\/SNI: ([^\]]*)\]/.exec(line)?.[1] ?? '',
      ja4: /\[JA4: ([^\]]+)\]/.exec(line)?.[1] ?? '',
      risks: (/\[Risk: ([^\]]*)\]/.exec(line)?.[1] ?? '')
        .split('**')
        .map((r) => r.trim())
        .filter((r) => r !== ''),
      line: line.trim().slice(0, 160),
    });
  }
  return out;
}

/** Captures that have a listing. */
export function corpusFiles(): { pcap: string; listing: string; name: string }[] {
  const dir = join(CORPUS, 'pcap');
  return readdirSync(dir)
    .sort()
    .map((name) => ({ name, pcap: join(dir, name), listing: join(CORPUS, 'result', `${name}.out`) }))
    .filter((f) => existsSync(f.listing));
}

export async function evaluate(): Promise<EvalResult> {
  const started = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-eval-'));
  const files = corpusFiles();
  const ours = new Map<string, FlowSummary[]>();
  try {
    const db = join(dir, 'eval.duckdb');
    const store = await openStore({ db });
    // One import per capture (node = capture name), so that captures do not share flows.
    try {
      for (const f of files) await importFiles([f.pcap], { store, node: f.name, iface: f.name });
    } finally {
      await store.close();
    }
    const reader = await openStore({ db, readOnly: true });
    try {
      for await (const s of reader.exportFlows()) {
        const key = `${s.node}#${flowKey(s.transport, canonicalIp(s.clientIp), String(s.clientPort), canonicalIp(s.serverIp), String(s.serverPort))}`;
        let list = ours.get(key);
        if (!list) ours.set(key, (list = []));
        list.push(s);
      }
    } finally {
      await reader.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const result: EvalResult = {
    flows: 0,
    matched: 0,
    agree: 0,
    perProtocol: {},
    names: 0,
    namesIdentical: 0,
    namesClean: 0,
    namesCleanIdentical: 0,
    agreeBy: {},
    ja4: 0,
    ja4Identical: 0,
    ja4Differences: [],
    confusion: [],
    beyond: {},
    beyondWrong: [],
    nameMismatches: [],
    ja4Mismatches: [],
    seconds: 0,
  };
  const confusion = new Map<string, number>();
  const ja4Differences = new Map<string, number>();
  const beyondWrong = new Map<string, number>();
  for (const f of files) {
    for (const n of parseListing(f.name, readFileSync(f.listing, 'utf8'))) {
      const candidates = ours.get(`${f.name}#${n.key}`);
      // Ports reused by several connections: prefer the one labelled alike.
      const mine = candidates?.find((c) => c.app === n.master) ?? candidates?.[0];
      if (!EVAL_PROTOCOLS.has(n.master)) {
        if (BEYOND_PROTOCOLS.has(n.master)) {
          const p = (result.beyond[n.master] ??= { flows: 0, agree: 0 });
          p.flows++;
          if (mine?.app === n.master) p.agree++;
        }
        if (mine !== undefined && BEYOND_PROTOCOLS.has(mine.app) && mine.app !== n.master) {
          const k = `${n.master} -> ${mine.app} [${mine.confidence}]`;
          beyondWrong.set(k, (beyondWrong.get(k) ?? 0) + 1);
        }
        continue;
      }
      result.flows++;
      const p = (result.perProtocol[n.master] ??= { flows: 0, agree: 0 });
      p.flows++;
      if (mine === undefined) {
        const k = `${n.master} -> (no flow)`;
        confusion.set(k, (confusion.get(k) ?? 0) + 1);
        continue;
      }
      result.matched++;
      if (mine.app === n.master) {
        result.agree++;
        p.agree++;
        result.agreeBy[mine.confidence] = (result.agreeBy[mine.confidence] ?? 0) + 1;
      } else {
        const k = `${n.master} -> ${mine.app || '(none)'}`;
        confusion.set(k, (confusion.get(k) ?? 0) + 1);
        if (confusion.get(k)! <= 12) result.nameMismatches.push(`app ${k} [${mine.confidence}] ${f.name}: ${n.line}`);
      }
      if (n.serverName !== '') {
        result.names++;
        const clean = !f.name.startsWith('fuzz-');
        if (clean) result.namesClean++;
        if (mine.serverName === n.serverName) {
          result.namesIdentical++;
          if (clean) result.namesCleanIdentical++;
        } else result.nameMismatches.push(`name ${f.name} ${n.master}/${mine.app}: nDPI '${n.serverName}' flowlens '${mine.serverName}'`);
      }
      if (n.ja4 !== '' && mine.app === n.master) {
        const ja4 = (mine.appInfo ? (JSON.parse(mine.appInfo) as { ja4?: string }).ja4 : undefined) ?? '';
        result.ja4++;
        if (ja4 === n.ja4) result.ja4Identical++;
        else {
          result.ja4Mismatches.push(`${f.name}: nDPI ${n.ja4} flowlens ${ja4 || '(none)'}`);
          const part = ja4Difference(n.ja4, ja4);
          ja4Differences.set(part, (ja4Differences.get(part) ?? 0) + 1);
        }
      }
    }
  }
  result.confusion = [...confusion].sort((a, b) => b[1] - a[1]);
  result.beyondWrong = [...beyondWrong].sort((a, b) => b[1] - a[1]);
  result.ja4Differences = [...ja4Differences].sort((a, b) => b[1] - a[1]);
  result.seconds = (Date.now() - started) / 1000;
  return result;
}

/**
 * The parts in which two JA4 fingerprints differ (FoxIO's layout: protocol, TLS version, SNI flag
 * 'd'/'i', cipher and extension counts, ALPN's first and last characters; then the cipher hash and
 * the extension hash), e.g. "SNI flag d -> i + ALPN ht -> h1".
 */
export function ja4Difference(ndpi: string, ours: string): string {
  const [a1 = '', b1, c1] = ndpi.split('_');
  const [a2 = '', b2, c2] = ours.split('_');
  if (ours === '') return 'none computed';
  const parts: string[] = [];
  const field = (name: string, from: number, to: number) => {
    if (a1.slice(from, to) !== a2.slice(from, to)) parts.push(`${name} ${a1.slice(from, to)} -> ${a2.slice(from, to)}`);
  };
  field('protocol', 0, 1);
  field('version', 1, 3);
  field('SNI flag', 3, 4);
  field('counts', 4, 8);
  field('ALPN', 8, 10);
  if (b1 !== b2) parts.push('cipher hash');
  if (c1 !== c2) parts.push('extension hash');
  return parts.join(' + ');
}

function pct(a: number, b: number): string {
  return b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`;
}

export function report(r: EvalResult, verbose = true): string {
  const lines: string[] = [];
  lines.push('master protocol agreement with nDPI, per protocol (flows nDPI labels with it):');
  for (const [name, p] of Object.entries(r.perProtocol).sort((a, b) => b[1].flows - a[1].flows)) {
    lines.push(`  ${name.padEnd(12)} ${String(p.agree).padStart(5)} / ${String(p.flows).padEnd(5)} ${pct(p.agree, p.flows)}`);
  }
  lines.push(`overall: ${r.agree} / ${r.flows} = ${pct(r.agree, r.flows)} (flows found: ${r.matched}; agreement among them ${pct(r.agree, r.matched)})`);
  lines.push(
    `agreeing flows by flowlens confidence: ${Object.entries(r.agreeBy)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  lines.push(`server names identical: ${r.namesIdentical} / ${r.names} = ${pct(r.namesIdentical, r.names)}`);
  lines.push(`  without the mutated fuzz-* captures: ${r.namesCleanIdentical} / ${r.namesClean} = ${pct(r.namesCleanIdentical, r.namesClean)}`);
  lines.push(`JA4 identical (TLS/QUIC flows where nDPI prints one): ${r.ja4Identical} / ${r.ja4} = ${pct(r.ja4Identical, r.ja4)}`);
  lines.push('  where they differ, by part (nDPI -> flowlens):');
  for (const [k, n] of r.ja4Differences) lines.push(`  ${String(n).padStart(4)}  ${k}`);
  lines.push('confusion (nDPI -> flowlens):');
  for (const [k, n] of r.confusion) lines.push(`  ${String(n).padStart(4)}  ${k}`);
  lines.push("beyond the issue's list, agreement per protocol (flows nDPI labels with it):");
  for (const [name, p] of Object.entries(r.beyond).sort((a, b) => b[1].flows - a[1].flows)) {
    lines.push(`  ${name.padEnd(25)} ${String(p.agree).padStart(5)} / ${String(p.flows).padEnd(5)} ${pct(p.agree, p.flows)}`);
  }
  const wrong = r.beyondWrong.reduce((n, [, c]) => n + c, 0);
  lines.push(`  flows flowlens gives one of these where nDPI says another protocol: ${wrong}`);
  for (const [k, n] of r.beyondWrong) lines.push(`  ${String(n).padStart(4)}  ${k}`);
  if (verbose) {
    lines.push('examples:');
    for (const m of r.nameMismatches.slice(0, 400)) lines.push(`  ${m}`);
    for (const m of r.ja4Mismatches.slice(0, 400)) lines.push(`  ja4 ${m}`);
  }
  lines.push(`(${r.seconds.toFixed(1)} s)`);
  return lines.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (!existsSync(CORPUS)) {
    console.error(`no corpus at ${CORPUS}`);
    process.exit(1);
  }
  const r = await evaluate();
  console.log(report(r, !process.argv.includes('--quiet')));
}
