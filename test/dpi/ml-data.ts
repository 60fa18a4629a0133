// The learned classifier's data set (test/dpi/ml.ts): every flow of the nDPI corpus that nDPI
// identified by payload (Confidence DPI, not a port or IP match: those labels would only teach the
// port back), with the packet features flowlens's flow path collects for it
// (FlowClassifier.flowFeatures, handed over by the Aggregator's onFlowFeatures) and nDPI's
// category and application as the labels.
import { readFileSync } from 'node:fs';
import { importFiles } from '../../src/capture/import.js';
import { CLASSIFY_PACKETS, ML_CATEGORIES } from '../../src/classify/classifier.js';
import type { FlowSummary } from '../../src/records/index.js';
import { canonicalIp, corpusFiles, flowKey, splitEndpoint } from './eval.js';

export interface Sample {
  /** Capture file name: the unit of every split. */
  capture: string;
  /** flowKey of its 5-tuple (test/dpi/eval.ts). */
  key: string;
  ipProto: number;
  serverPort: number;
  /** FlowClassifier.flowFeatures. */
  flow: Float32Array;
  /** Index into ML_CATEGORIES. */
  category: number;
  /** nDPI's application ('Google' of TLS.Google), else its master protocol ('DNS'). */
  app: string;
  /** nDPI's master protocol (TLS, QUIC, DNS...). */
  master: string;
}

const P2P_APPS = /BitTorrent|Gnutella|eDonkey|Kazaa|Soulseek|Thunder|AppleJuice|DirectConnect|Bitcoin|Ethereum|Monero|Mining/i;

/**
 * nDPI's category (by its application for P2P and cryptocurrency nodes) -> index of ML_CATEGORIES.
 * web: Web, Cloud, SocialNetwork, Shopping, Advertisement, Collaborative, VirtAssistant;
 * video-streaming: Streaming, Video, Media, Music; chat-voip: Chat, VoIP; file-transfer: Download,
 * DataTransfer, SoftwareUpdate; vpn-tunnel: VPN; p2p: P2P applications, Crypto_Currency, Mining;
 * gaming: Game; system: Network, System, RPC, ConnCheck, IoT-Scada, Database, RemoteAccess;
 * other: the rest (Email, Cybersecurity, ...).
 */
export function categoryOf(ndpiCategory: string, app: string): number {
  const c = (name: (typeof ML_CATEGORIES)[number]) => ML_CATEGORIES.indexOf(name);
  if (P2P_APPS.test(app)) return c('p2p');
  switch (ndpiCategory) {
    case 'Web':
    case 'Cloud':
    case 'SocialNetwork':
    case 'Shopping':
    case 'Advertisement':
    case 'Collaborative':
    case 'VirtAssistant':
      return c('web');
    case 'Streaming':
    case 'Video':
    case 'Media':
    case 'Music':
      return c('video-streaming');
    case 'Chat':
    case 'VoIP':
      return c('chat-voip');
    case 'Download':
    case 'DataTransfer':
    case 'SoftwareUpdate':
      return c('file-transfer');
    case 'VPN':
      return c('vpn-tunnel');
    case 'Crypto_Currency':
    case 'Mining':
      return c('p2p');
    case 'Game':
      return c('gaming');
    case 'Network':
    case 'System':
    case 'RPC':
    case 'ConnCheck':
    case 'IoT-Scada':
    case 'Database':
    case 'RemoteAccess':
      return c('system');
    default:
      return c('other');
  }
}

const LINE = /^\s*\d+\s+(TCP|UDP)\s+(\S+)\s+(?:<->|->)\s+(\S+)\s+\[proto: ([^\]]+)\]/;

interface Label {
  category: number;
  app: string;
  master: string;
}

/** nDPI's payload-identified TCP and UDP flows of a listing, by flowKey. */
export function labelsOf(listing: string): Map<string, Label> {
  const out = new Map<string, Label>();
  for (const line of listing.split('\n')) {
    const m = LINE.exec(line);
    if (!m) continue;
    const confidence = /\[Confidence: ([^\]]+)\]/.exec(line)?.[1] ?? '';
    const cat = /\[cat: ([^/\]]+)/.exec(line)?.[1];
    if (!confidence.startsWith('DPI') || cat === undefined) continue;
    const [, transport, a, b, proto] = m;
    if (proto.includes(':')) continue; // inside a tunnel flowlens does not decode
    const name = proto.slice(proto.indexOf('/') + 1);
    const dot = name.indexOf('.');
    const master = dot > 0 ? name.slice(0, dot) : name;
    const app = dot > 0 ? name.slice(dot + 1) : name;
    const [ai, ap] = splitEndpoint(a);
    const [bi, bp] = splitEndpoint(b);
    const key = flowKey(transport.toLowerCase(), ai, ap, bi, bp);
    // A 5-tuple nDPI lists twice (a port reused) is ambiguous: left out.
    if (out.has(key)) out.set(key, { category: -1, app: '', master: '' });
    else out.set(key, { category: categoryOf(cat.trim(), app), app, master });
  }
  return out;
}

/** Every labelled flow with payload of the corpus (or of `files`), in capture order (deterministic). */
export async function corpusSamples(files = corpusFiles()): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const file of files) {
    const labels = labelsOf(readFileSync(file.listing, 'utf8'));
    const seen = new Map<string, { record: FlowSummary; flow: Float32Array } | null>();
    await importFiles([file.pcap], {
      store: null,
      detect: false,
      node: file.name,
      onFlowFeatures: (record, flow) => {
        const key = flowKey(record.transport, canonicalIp(record.clientIp), String(record.clientPort), canonicalIp(record.serverIp), String(record.serverPort));
        // Two flows of one 5-tuple in flowlens: which one nDPI labelled is not known.
        seen.set(key, seen.has(key) ? null : { record, flow });
      },
    });
    for (const [key, s] of seen) {
      const label = labels.get(key);
      if (s === null || label === undefined || label.category < 0) continue;
      if (s.flow[2 * CLASSIFY_PACKETS] === 0) continue; // no payload packet: nothing to classify
      out.push({ capture: file.name, key, ipProto: s.record.ipProto, serverPort: s.record.serverPort, flow: s.flow, ...label });
    }
  }
  return out;
}
