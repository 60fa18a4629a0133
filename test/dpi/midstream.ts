// Mid-stream TCP: captures of the nDPI corpus cut so that every TCP connection starts after its
// handshake (no SYN, no SYN-ACK, no bare ACK before the first payload: the first packet seen of a
// connection is its first payload, a ClientHello or an HTTP request), then identified by flowlens
// and by the installed ndpiReader on the same cut file, flow by flow.
//
//   node --import tsx test/dpi/midstream.ts [--all] [--first-payload] [CAPTURE...]   prints the figures and every difference
//   import { compareMidstream } ...                                  used by test/dpi-midstream.test.ts
//
// The installed ndpiReader (Debian's libndpi-bin) is older than the nDPI that wrote the corpus's
// listings, so it is also run on the uncut capture: a difference both there and on the cut file is
// the two versions' naming, not mid-stream identification.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { importFiles } from '../../src/capture/import.js';
import type { FlowRecord } from '../../src/store/types.js';
import { canonicalIp, corpusFiles, EVAL_PROTOCOLS, flowKey, parseListing } from './eval.js';
import { flowCollector } from './risks-eval.js';

const run = promisify(execFile);

/**
 * tshark display filters: 'handshake' keeps all but each TCP connection's handshake and bare ACKs
 * before its first payload (the first packet seen is the first payload, a ClientHello, an HTTP
 * request or a server's greeting); 'first-payload' also drops each side's first payload segment
 * (relative sequence number 1), as when a capture starts during the first exchange: what is left
 * starts with a second segment (a certificate's tail, a ClientKeyExchange, the next command).
 */
export const CUT_FILTERS = {
  handshake: '!(tcp.flags.syn == 1) && !(tcp.len == 0 && tcp.seq == 1 && tcp.ack == 1)',
  'first-payload': '!(tcp.flags.syn == 1) && !(tcp.seq == 1)',
} as const;
export type CutMode = keyof typeof CUT_FILTERS;

/** Corpus captures of TCP protocols flowlens identifies from the client's first payload (and a few from the server's). */
export const MIDSTREAM_CAPTURES = [
  '1kxun.pcap',
  '443-chrome.pcap',
  '443-curl.pcap',
  '443-firefox.pcap',
  '443-git.pcap',
  'ftp.pcap',
  'git.pcap',
  'http_auth.pcap',
  'http_connect.pcap',
  'imap-starttls.pcap',
  'imaps.pcap',
  'iphone.pcap',
  'mqtt.pcap',
  'mssql_tds.pcap',
  'netflix.pcap',
  'nntp.pcap',
  'pgsql.pcap',
  'pop3.pcap',
  'rdp3.pcap',
  'resp.pcap',
  'safari.pcap',
  'smbv1.pcap',
  'smtp.pcap',
  'smtp-starttls.pcap',
  'ssh.pcap',
  'telnet.pcap',
  'tls-rdn-extract.pcap',
  'tls_long_cert.pcap',
  'tumblr.pcap',
  'websocket.pcap',
  'weibo.pcap',
];

export interface MidstreamFigures {
  captures: number;
  /** TCP flows ndpiReader labels, on the cut files, with one of EVAL_PROTOCOLS; flowlens's agreement. */
  flows: number;
  agree: number;
  /** Of those flows, the ones where flowlens agrees with ndpiReader on the uncut capture (version naming aside). */
  agreeUncut: number;
  /** The same flows: ndpiReader's label on the uncut capture equal to its label on the cut one. */
  ndpiStable: number;
  /** Server names ndpiReader reports on the cut files, and how many flowlens named identically (on the cut, on the uncut capture). */
  names: number;
  namesIdentical: number;
  namesIdenticalUncut: number;
  differences: string[];
}

/** Writes `src` without its TCP handshakes as classic pcap at `dst`; false when tshark cannot (several link types). */
export async function cutHandshakes(src: string, dst: string, mode: CutMode = 'handshake'): Promise<boolean> {
  try {
    await run('tshark', ['-r', src, '-Y', CUT_FILTERS[mode], '-F', 'pcap', '-w', dst], { maxBuffer: 1 << 20 });
    return true;
  } catch {
    return false;
  }
}

/** ndpiReader's flow listing of a capture. */
export async function ndpiReaderListing(file: string, name: string): Promise<ReturnType<typeof parseListing>> {
  const { stdout } = await run('ndpiReader', ['-i', file, '-v', '2', '-q'], { maxBuffer: 64 << 20 });
  return parseListing(name, stdout);
}

/** A flow as flowlens exported it, as of its last segment. */
export interface OurFlow {
  app: string;
  serverName: string;
  confidence: string;
  appInfo: string;
}

/** flowlens's flows of a capture by flowKey: app, server name, confidence and appInfo as of their last segment. */
export async function flowlensFlows(file: string, name: string): Promise<Map<string, OurFlow[]>> {
  const records: FlowRecord[] = [];
  await importFiles([file], { store: flowCollector(records), node: name, iface: name, detect: false });
  const byId = new Map<string, OurFlow & { key: string }>();
  for (const r of records) {
    let f = byId.get(r.flowId);
    if (f === undefined) {
      f = {
        key: flowKey(r.transport, canonicalIp(r.clientIp), String(r.clientPort), canonicalIp(r.serverIp), String(r.serverPort)),
        app: '',
        serverName: '',
        confidence: '',
        appInfo: '',
      };
      byId.set(r.flowId, f);
    }
    if (r.app !== '') f.app = r.app;
    if (r.serverName !== '') f.serverName = r.serverName;
    if (r.confidence !== '') f.confidence = r.confidence;
    if (r.appInfo !== '') f.appInfo = r.appInfo;
  }
  const out = new Map<string, OurFlow[]>();
  for (const f of byId.values()) {
    let list = out.get(f.key);
    if (!list) out.set(f.key, (list = []));
    list.push(f);
  }
  return out;
}

type Ours = Awaited<ReturnType<typeof flowlensFlows>>;

function pick(ours: Ours, key: string, master: string) {
  const candidates = ours.get(key);
  return candidates?.find((c) => c.app === master) ?? candidates?.[0];
}

export async function compareMidstream(names: readonly string[], mode: CutMode = 'handshake'): Promise<MidstreamFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'flowlens-midstream-'));
  const out: MidstreamFigures = {
    captures: 0,
    flows: 0,
    agree: 0,
    agreeUncut: 0,
    ndpiStable: 0,
    names: 0,
    namesIdentical: 0,
    namesIdenticalUncut: 0,
    differences: [],
  };
  try {
    for (const file of corpusFiles().filter((f) => names.includes(f.name))) {
      const cut = join(dir, `${file.name}.cut.pcap`);
      if (!(await cutHandshakes(file.pcap, cut, mode))) continue;
      out.captures++;
      const uncut = new Map((await ndpiReaderListing(file.pcap, file.name)).map((n) => [n.key, n]));
      const ours = await flowlensFlows(cut, file.name);
      const oursUncut = await flowlensFlows(file.pcap, file.name);
      for (const n of await ndpiReaderListing(cut, file.name)) {
        if (!n.key.startsWith('tcp/') || !EVAL_PROTOCOLS.has(n.master)) continue;
        const mine = pick(ours, n.key, n.master);
        const before = uncut.get(n.key);
        const mineBefore = before === undefined ? undefined : pick(oursUncut, n.key, before.master);
        out.flows++;
        if (before?.master === n.master) out.ndpiStable++;
        if (mineBefore !== undefined && mineBefore.app === before?.master) out.agreeUncut++;
        const tag = mineBefore !== undefined && mineBefore.app !== before?.master ? ' (differs on the uncut capture too)' : '';
        if (mine?.app === n.master) out.agree++;
        else
          out.differences.push(
            `app ${file.name}: ndpiReader ${n.master} flowlens ${mine ? `${mine.app || '(none)'} [${mine.confidence}]` : '(no flow)'}${tag}: ${n.line}`,
          );
        if (n.serverName !== '') {
          out.names++;
          if (mineBefore !== undefined && mineBefore.serverName === before?.serverName) out.namesIdenticalUncut++;
          const nameTag = mineBefore !== undefined && mineBefore.serverName !== before?.serverName ? ' (differs on the uncut capture too)' : '';
          if (mine?.serverName === n.serverName) out.namesIdentical++;
          else out.differences.push(`name ${file.name}: ndpiReader '${n.serverName}' flowlens '${mine?.serverName ?? '(no flow)'}'${nameTag}`);
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const all = args.includes('--all');
  const mode: CutMode = args.includes('--first-payload') ? 'first-payload' : 'handshake';
  const picked = args.filter((a) => !a.startsWith('--'));
  const names = picked.length > 0 ? picked : all ? corpusFiles().map((f) => f.name) : MIDSTREAM_CAPTURES;
  if (!existsSync(corpusFiles()[0]?.pcap ?? '')) {
    console.error('no corpus');
    process.exit(1);
  }
  const r = await compareMidstream(names, mode);
  for (const d of r.differences) console.log(d);
  const pct = (a: number, b: number) => (b === 0 ? '-' : `${((100 * a) / b).toFixed(1)}%`);
  console.log(`${r.captures} captures cut (${mode}); TCP flows ndpiReader labels with the issue's protocols: ${r.flows}`);
  console.log(`  master protocol identical: ${r.agree} / ${r.flows} = ${pct(r.agree, r.flows)}`);
  console.log(`  (on the uncut captures: ${r.agreeUncut} / ${r.flows}; ndpiReader's own label unchanged by the cut: ${r.ndpiStable} / ${r.flows})`);
  console.log(
    `  server names identical: ${r.namesIdentical} / ${r.names} = ${pct(r.namesIdentical, r.names)} (on the uncut captures: ${r.namesIdenticalUncut})`,
  );
}
