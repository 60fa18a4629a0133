// STUN/TURN details against nDPI's listings of the corpus: for every flow nDPI labels STUN (master
// protocol 78), the service nDPI names on top ("STUN.WhatsAppCall"), the realm it reports as the
// server name, and the mapped, relayed, peer, response-origin and other addresses, compared with
// flowlens's serverName and appInfo (src/dpi/protocols/stun.ts).
//
//   node --import tsx test/dpi/stun-eval.ts     prints the figures and every difference
//   import { evaluateStun } ...                  used by test/dpi-stun.test.ts
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { corpusFiles, parseListing } from './eval.js';
import { flowlensFlows } from './midstream.js';

/** nDPI's listing field -> flowlens's appInfo key. */
export const STUN_ADDRESS_FIELDS: Record<string, string> = {
  'Mapped IP/Port': 'mappedAddress',
  'Relayed IP/Port': 'relayedAddress',
  'Peer IP/Port': 'peerAddress',
  'Rsp Origin IP/Port': 'responseOrigin',
  'Other IP/Port': 'otherAddress',
};

export interface Agreement {
  /** Flows where nDPI reports it, and where flowlens reports the same. */
  ndpi: number;
  same: number;
  /** Flows where flowlens reports one and nDPI none. */
  oursOnly: number;
}

export interface StunFigures {
  /** Flows nDPI labels STUN that flowlens has. */
  flows: number;
  /** The service (nDPI's app protocol on top of STUN; '' for plain STUN). */
  service: Agreement & { plainBoth: number };
  /** Per field: the realm ('realm') and the address fields. */
  fields: Record<string, Agreement>;
  differences: string[];
}

const LINE_PROTO = /\[proto: 78(?:\.\d+)?\/STUN(?:\.([^\]]+))?\]/;

/** The service names of nDPI's that are services, not what the media turned out to be. */
const NOT_SERVICES = new Set(['RTP', 'RTCP', 'SRTP', 'DTLS']);

export async function evaluateStun(): Promise<StunFigures> {
  const out: StunFigures = { flows: 0, service: { ndpi: 0, same: 0, oursOnly: 0, plainBoth: 0 }, fields: {}, differences: [] };
  const field = (name: string) => (out.fields[name] ??= { ndpi: 0, same: 0, oursOnly: 0 });
  for (const file of corpusFiles()) {
    const text = readFileSync(file.listing, 'utf8');
    if (!text.includes('/STUN')) continue;
    // Line by line: the details are past the part parseListing keeps of a line.
    const listed = text
      .split('\n')
      .map((line) => ({ line, n: parseListing(file.name, line)[0] }))
      .filter((x) => x.n?.master === 'STUN');
    if (listed.length === 0) continue;
    const ours = await flowlensFlows(file.pcap, file.name);
    for (const { line, n } of listed) {
      const mine = ours.get(n.key)?.find((f) => f.app === 'STUN');
      if (mine === undefined) continue;
      out.flows++;
      const info = (mine.appInfo === '' ? {} : JSON.parse(mine.appInfo)) as Record<string, string | number>;
      const m = LINE_PROTO.exec(n.line);
      const ndpiService = m?.[1] !== undefined && !NOT_SERVICES.has(m[1]) ? m[1] : '';
      const ourService = typeof info.service === 'string' ? info.service : '';
      if (ndpiService !== '') {
        out.service.ndpi++;
        if (ourService === ndpiService) out.service.same++;
        else
          out.differences.push(
            `service ${file.name}: nDPI ${ndpiService} flowlens ${ourService || '(none)'}${/Confidence: DPI \(cache\)/.test(line) ? ' [nDPI: from its cache of other flows]' : ''}: ${n.line.slice(0, 90)}`,
          );
      } else if (ourService !== '') {
        out.service.oursOnly++;
        out.differences.push(`service ${file.name}: nDPI (none) flowlens ${ourService}: ${n.line.slice(0, 90)}`);
      } else out.service.plainBoth++;
      const compare = (name: string, theirs: string, mineValue: string) => {
        const a = field(name);
        if (theirs !== '') {
          a.ndpi++;
          if (mineValue === theirs) a.same++;
          else out.differences.push(`${name} ${file.name}: nDPI '${theirs}' flowlens '${mineValue}': ${n.line.slice(0, 90)}`);
        } else if (mineValue !== '') {
          a.oursOnly++;
          out.differences.push(`${name} ${file.name}: nDPI (none) flowlens '${mineValue}': ${n.line.slice(0, 90)}`);
        }
      };
      compare('realm', n.serverName, mine.serverName);
      for (const [label, key] of Object.entries(STUN_ADDRESS_FIELDS)) {
        const theirs = new RegExp(`\\[${label.replace('/', '\\/')}: ((?:\\[[^\\]]*\\]|[^\\]])*)\\]`).exec(line)?.[1] ?? '';
        compare(key, theirs, typeof info[key] === 'string' ? (info[key] as string) : '');
      }
    }
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = await evaluateStun();
  for (const d of r.differences) console.log(d);
  console.log(`STUN flows (nDPI's label, found by flowlens): ${r.flows}`);
  console.log(
    `  service: ${r.service.same} / ${r.service.ndpi} identical where nDPI names one; flowlens names one where nDPI does not: ${r.service.oursOnly}; plain STUN for both: ${r.service.plainBoth}`,
  );
  for (const [name, a] of Object.entries(r.fields)) console.log(`  ${name.padEnd(15)} ${a.same} / ${a.ndpi} identical; flowlens only: ${a.oursOnly}`);
}
