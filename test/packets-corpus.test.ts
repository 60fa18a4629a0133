// The packets of a flow, extracted through the packet index, against tshark on real captures:
// for flows of corpus files (classic pcap in both byte orders and in nanoseconds, pcapng, IPv4
// fragments), the capture written for a flow equals, packet for packet and byte for byte, what
// `tshark -r ORIGINAL -Y '<the flow's 5-tuple, or a fragment of it>' -w` writes. Classic pcap
// outputs are compared whole with tshark's `-F pcap` file; pcapng ones packet by packet (tshark
// writes its own section and interface blocks). A capture imported as two files keeps its flows,
// and a flow spanning both comes out equal to tshark's on the original.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { importFiles } from '../src/capture/import.js';
import { CaptureFileReader } from '../src/capture/pcap-file.js';
import { importSource } from '../src/capture/source.js';
import { extractPackets } from '../src/packets/extract.js';
import { PacketIndexReader } from '../src/packets/index-reader.js';
import { PacketIndexWriter } from '../src/packets/index-writer.js';
import { packetsOfFlows } from '../src/packets/select.js';
import type { FlowRecord } from '../src/records/index.js';
import type { RecordBatch, StoreHealth, StoreWriter } from '../src/store/types.js';
import { sharedCorpusMissing } from './helpers/shared.js';

const exec = promisify(execFile);
const CORPUS = join(import.meta.dirname, '..', '..', 'shared', 'corpus');
const NDPI = join(CORPUS, 'ndpi', 'pcap');
const haveCorpus = existsSync(NDPI);
if (!haveCorpus) sharedCorpusMissing('packets-corpus', NDPI);
const work = mkdtempSync(join(tmpdir(), 'flowlens-packets-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A StoreWriter that keeps the flow segments (the store itself is not what is tested here). */
class FlowCollector implements StoreWriter {
  readonly backend = 'collector';
  flows: FlowRecord[] = [];
  async init(): Promise<void> {}
  async health(): Promise<StoreHealth> {
    return { backend: this.backend, ok: true };
  }
  async beginRun(): Promise<void> {}
  async write(batch: RecordBatch): Promise<void> {
    this.flows.push(...batch.flows);
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Packet {
  linkType: number;
  ts: number;
  caplen: number;
  wirelen: number;
  data: string;
}

async function packetsOf(path: string): Promise<Packet[]> {
  const reader = new CaptureFileReader(path);
  const out: Packet[] = [];
  await reader.open();
  try {
    while (
      await reader.readChunk((linkType, ts, data, offset, caplen, wirelen) => {
        out.push({ linkType, ts, caplen, wirelen, data: data.subarray(offset, offset + caplen).toString('hex') });
      })
    );
  } finally {
    await reader.close();
  }
  return out;
}

/** Imports `files` with the packet index on; returns the flows (segments merged by id) and the index reader. */
async function importIndexed(files: string[], dir: string): Promise<{ flows: Map<string, FlowRecord>; index: PacketIndexReader }> {
  const store = new FlowCollector();
  const source = await importSource(files);
  await importFiles(files, { store, source, packetIndex: new PacketIndexWriter(dir, { source }), detect: false });
  const flows = new Map<string, FlowRecord>();
  for (const f of store.flows) {
    const seen = flows.get(f.flowId);
    if (!seen) flows.set(f.flowId, { ...f });
    else {
      seen.clientPackets += f.clientPackets;
      seen.serverPackets += f.serverPackets;
    }
  }
  return { flows, index: new PacketIndexReader(dir) };
}

const tupleOf = (f: FlowRecord) => `${f.transport} ${f.clientIp}:${f.clientPort} ${f.serverIp}:${f.serverPort}`;

/** tshark's display filter for a flow's 5-tuple (either direction); ICMP errors quoting it are other flows. */
function tupleFilter(f: FlowRecord): string {
  const ip = f.clientIp.includes(':') ? 'ipv6' : 'ip';
  const t = f.transport;
  const side = (a: string, pa: number, b: string, pb: number) => `(${ip}.src==${a} && ${ip}.dst==${b} && ${t}.srcport==${pa} && ${t}.dstport==${pb})`;
  return `(${side(f.clientIp, f.clientPort, f.serverIp, f.serverPort)} || ${side(f.serverIp, f.serverPort, f.clientIp, f.clientPort)}) && !icmp && !icmpv6`;
}

async function tshark(args: string[]): Promise<string> {
  const { stdout } = await exec('tshark', args, { maxBuffer: 64 << 20 });
  return stdout;
}

/**
 * What tshark writes for the flow: the frames its 5-tuple filter matches, plus the IP fragments
 * tshark reassembled into them (tshark shows the ports only on the frame that completes a datagram;
 * `ip.fragment` lists the frames it was made of).
 */
async function tsharkFlow(original: string, f: FlowRecord, out: string, format: 'pcap' | 'pcapng'): Promise<void> {
  const filter = tupleFilter(f);
  const fields = await tshark(['-r', original, '-Y', filter, '-T', 'fields', '-E', 'separator=;', '-e', 'ip.fragment', '-e', 'ipv6.fragment']);
  const fragments = new Set<string>();
  for (const line of fields.split('\n')) for (const n of line.split(/[;,]/)) if (/^\d+$/.test(n)) fragments.add(n);
  const full = fragments.size > 0 ? `(${filter}) || frame.number in {${[...fragments].join(',')}}` : filter;
  await tshark(['-r', original, '-Y', full, '-F', format, '-w', out]);
}

async function extractTo(index: PacketIndexReader, flowId: string, path: string): Promise<'pcap' | 'pcapng'> {
  const chunks: Buffer[] = [];
  const result = await extractPackets((await packetsOfFlows(index, [flowId])).refs, (c) => {
    chunks.push(c);
  });
  writeFileSync(path, Buffer.concat(chunks));
  return result.format;
}

/** The flows to check in a file: the largest ones of unique 5-tuple (port reuse would give tshark more), and every fragmented one. */
function pick(flows: Map<string, FlowRecord>, n: number): FlowRecord[] {
  const byTuple = new Map<string, number>();
  for (const f of flows.values()) byTuple.set(tupleOf(f), (byTuple.get(tupleOf(f)) ?? 0) + 1);
  return [...flows.values()]
    .filter((f) => ['tcp', 'udp', 'sctp'].includes(f.transport) && byTuple.get(tupleOf(f)) === 1)
    .sort((a, b) => b.clientPackets + b.serverPackets - (a.clientPackets + a.serverPackets) || (a.flowId < b.flowId ? -1 : 1))
    .slice(0, n);
}

async function assertSameAsTshark(original: string, index: PacketIndexReader, f: FlowRecord, tag: string): Promise<number> {
  const ours = join(work, `${tag}-ours`);
  const format = await extractTo(index, f.flowId, ours);
  const theirs = join(work, `${tag}-tshark`);
  // tshark writes classic pcap little-endian in µs: the original's own header only for such a file.
  const wholeFile = format === 'pcap' && readFileSync(original).readUInt32LE(0) === 0xa1b2c3d4;
  await tsharkFlow(original, f, theirs, wholeFile ? 'pcap' : 'pcapng');
  const a = await packetsOf(ours);
  const b = await packetsOf(theirs);
  assert.ok(b.length > 0, `${tag} ${tupleOf(f)}: tshark found no packets`);
  assert.equal(a.length, b.length, `${tag} ${tupleOf(f)}: packets`);
  assert.deepEqual(a, b, `${tag} ${tupleOf(f)}: packets differ`);
  assert.equal(a.length, f.clientPackets + f.serverPackets, `${tag} ${tupleOf(f)}: packets of the flow record`);
  // Classic pcap: the same header and records, so the same file.
  if (wholeFile) assert.ok(readFileSync(ours).equals(readFileSync(theirs)), `${tag} ${tupleOf(f)}: files differ`);
  return a.length;
}

const CASES: { file: string; flows: number; expect: 'pcap' | 'pcapng'; note: string }[] = [
  { file: '1kxun.pcap', flows: 2, expect: 'pcap', note: 'little-endian µs pcap' },
  { file: 'dns_fragmented.pcap', flows: 3, expect: 'pcap', note: 'IPv4 and IPv6 fragments' },
  { file: 'alexa-app.pcapng', flows: 2, expect: 'pcapng', note: 'pcapng' },
  { file: 'nsec:443-curl.pcap', flows: 2, expect: 'pcap', note: 'the capture as nanosecond pcap (editcap -F nsecpcap)' },
  { file: 'sctp.cap', flows: 1, expect: 'pcap', note: 'big-endian pcap, SCTP' },
];

for (const c of CASES) {
  test(`packets of ${c.file} (${c.note}) equal tshark's per flow`, { skip: haveCorpus ? false : `corpus absent (${NDPI})` }, async () => {
    let original = join(NDPI, c.file);
    if (c.file.startsWith('nsec:')) {
      original = join(work, `${c.file.slice(5)}.nsec.pcap`);
      await exec('editcap', ['-F', 'nsecpcap', join(NDPI, c.file.slice(5)), original]);
    }
    const { flows, index } = await importIndexed([original], join(work, `idx-${c.file}`));
    const chosen = pick(flows, c.flows);
    // The fragmented flows of the file as well: those whose tshark reassembly spans frames.
    assert.ok(chosen.length > 0, `${c.file}: no flow to check`);
    let packets = 0;
    for (const [i, f] of chosen.entries()) packets += await assertSameAsTshark(original, index, f, `${c.file}-${i}`);
    assert.ok(packets > 0);
    const first = join(work, `${c.file}-fmt`);
    assert.equal(await extractTo(index, chosen[0].flowId, first), c.expect);
  });
}

test('a fragmented flow keeps its later fragments', { skip: haveCorpus ? false : `corpus absent (${NDPI})` }, async () => {
  const original = join(NDPI, 'dns_fragmented.pcap');
  const { flows, index } = await importIndexed([original], join(work, 'idx-frag'));
  const listing = await tshark(['-r', original, '-Y', 'ip.flags.mf==1 || ip.frag_offset>0', '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst']);
  const pairs = new Set(
    listing
      .trim()
      .split('\n')
      .map((l) => l.split('\t').sort().join(' ')),
  );
  assert.ok(pairs.size > 0, 'the capture has fragments');
  const fragmented = [...flows.values()].filter((f) => f.transport === 'udp' && pairs.has([f.clientIp, f.serverIp].sort().join(' ')));
  assert.ok(fragmented.length > 0, 'a UDP flow between hosts that fragment');
  let withFragments = 0;
  for (const [i, f] of fragmented.entries()) {
    const tag = `frag-${i}`;
    await assertSameAsTshark(original, index, f, tag);
    const fields = await tshark(['-r', join(work, `${tag}-ours`), '-T', 'fields', '-e', 'ip.frag_offset']);
    if (fields.split('\n').some((v) => Number(v) > 0)) withFragments++;
  }
  assert.ok(withFragments > 0, 'at least one extracted flow holds a later fragment');
});

test('a capture imported as two files: a flow spanning both comes out whole', { skip: haveCorpus ? false : `corpus absent (${NDPI})` }, async () => {
  const original = join(NDPI, '1kxun.pcap');
  const total = (await packetsOf(original)).length;
  const half = Math.floor(total / 2);
  const a = join(work, 'half-a.pcap');
  const b = join(work, 'half-b.pcap');
  await exec('editcap', ['-r', original, a, `1-${half}`]);
  await exec('editcap', ['-r', original, b, `${half + 1}-${total}`]);
  const { flows, index } = await importIndexed([a, b], join(work, 'idx-halves'));
  const secondStarts = (await packetsOf(b))[0].ts;
  const spanning = pick(flows, 50).filter((f) => f.firstSeen < secondStarts && f.lastSeen >= secondStarts);
  assert.ok(spanning.length > 0, 'a flow with packets in both halves');
  const refs = await index.lookup(spanning[0].flowId);
  assert.deepEqual(new Set(refs.map((r) => basename(r.file.path))), new Set(['half-a.pcap', 'half-b.pcap']));
  await assertSameAsTshark(original, index, spanning[0], 'halves');
});

test('a flow id the index does not hold gives no packets; a malformed id is refused', async () => {
  const index = new PacketIndexReader(join(work, 'nothing-here'));
  assert.deepEqual(await index.lookup('0123456789abcdef'), []);
  await assert.rejects(index.lookup('not-an-id'), /not a flow id/);
});
