/**
 * Packet times a store cannot hold: a pcapng timestamp whose high word is 0xFFFFFFFF, an interface
 * whose if_tsoffset or if_tsresol puts its packets before 1970 or after 2200, classic pcap records
 * whose fraction is a second or more. Such a packet is malformed (`pcap.bad-timestamp`), never fatal:
 * the good packets around it form their flows, with the DuckDB store and with --dry-run. Old
 * captures (1970, time 0) are fine. And a file that fails, however it fails, leaves the other files
 * of the command imported, names itself, and makes the exit code 1.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closedTcpConversation, type ClosedConversation } from './helpers/conversation.js';
import { LINKTYPE, ts, type Frame } from './helpers/frames.js';
import { pcap, pcapng, type PcapFrame, type PcapngFrame, type PcapngInterface } from './helpers/pcap-writer.js';
import {
  assertEach,
  assertFlow,
  exportFlows,
  expectedFlow,
  findFlow,
  importFiles,
  linesMentioning,
  stackTraceLines,
  withTempDir,
  type CliResult,
  type ImportResult,
} from './helpers/cli.js';

const BAD_TS = 'pcap.bad-timestamp';
const BASE = 1_700_000_000;

/** A closed TCP conversation of 10 packets between 10.60.<n>.1 and 10.60.<n>.2, from `start`. */
function conv(n: number, start = ts(BASE + n * 10)): ClosedConversation {
  return closedTcpConversation({ ip: `10.60.${n}.1`, port: 41000 + n }, { ip: `10.60.${n}.2`, port: 80 }, start);
}

/** A copy of the conversation's 5th frame (same addresses and ports) with other time fields: counted into the flow if it were accepted. */
function badCopy<T extends Frame>(c: { frames: Frame[] }, extra: Omit<T, keyof Frame> & Partial<Frame>): T {
  return { ...c.frames[4], ...extra } as T;
}

function assertNoCrash(r: CliResult): void {
  assert.notEqual(r.signal, 'SIGKILL', 'timed out');
  assert.deepEqual(stackTraceLines(r.stderr), [], `stack trace on stderr:\n${r.stderr}`);
}

/** Imports with the DuckDB store and with --dry-run; both must give the same counts. */
async function importBoth(dir: string, files: string[], expectCode = 0): Promise<{ stored: ImportResult; dry: ImportResult; db: string }> {
  const db = join(dir, 'db.duckdb');
  const stored = await importFiles(db, files, { expectCode });
  assertNoCrash(stored);
  const dry = await importFiles(join(dir, 'dry.duckdb'), files, { expectCode, extra: ['--dry-run'] });
  assertNoCrash(dry);
  assert.equal(existsSync(join(dir, 'dry.duckdb')), false, '--dry-run opens no store');
  const counts = (r: ImportResult) => {
    const s = r.summary;
    return { packets: s.packets, bytes: s.bytes, flows: s.flows, malformed: s.malformed, malformedByReason: s.malformedByReason };
  };
  assert.deepEqual(counts(dry), counts(stored), 'the dry run counts as the import does');
  return { stored, dry, db };
}

describe('flowlens import: timestamps out of range', () => {
  it('pcapng: a 0xFFFFFFFF high word, an if_tsoffset past 2200 or before 1970 and seconds-resolution units past 2200 are malformed packets; the flows around them are stored', async () => {
    await withTempDir(async (dir) => {
      const a = conv(1);
      const b = conv(2);
      const interfaces: PcapngInterface[] = [
        { linktype: LINKTYPE.ETHERNET }, // µs
        { linktype: LINKTYPE.ETHERNET, tsoffset: 1n << 50n }, // every packet 2^50 s after the epoch
        { linktype: LINKTYPE.ETHERNET, tsoffset: -2_000_000_000n }, // 2023 - 63 years: 1906
        { linktype: LINKTYPE.ETHERNET, tsresol: 0 }, // whole seconds
      ];
      const bad: PcapngFrame[] = [
        badCopy<PcapngFrame>(a, { units: 0xffffffff_00000000n | 1234n }), // the packet: 18446744070451827000 µs
        badCopy<PcapngFrame>(a, { iface: 1 }),
        badCopy<PcapngFrame>(b, { iface: 2 }),
        badCopy<PcapngFrame>(b, { iface: 3, units: 1n << 40n }), // 2^40 s: year 36812
      ];
      // The bad packets sit among the good ones, each with the 5-tuple of a conversation.
      const frames: PcapngFrame[] = [
        ...a.frames.slice(0, 5),
        bad[0],
        bad[1],
        ...a.frames.slice(5),
        ...b.frames.slice(0, 3),
        bad[2],
        bad[3],
        ...b.frames.slice(3),
      ];
      const file = join(dir, 'bad-times.pcapng');
      writeFileSync(file, pcapng({ options: { interfaces }, frames }));
      const { stored, dry, db } = await importBoth(dir, [file]);
      for (const r of [stored, dry]) {
        const s = r.summary;
        assert.equal(s.packets, frames.length, 'the bad packets are counted as packets read');
        assert.equal(s.malformed, 4, JSON.stringify(s));
        assert.deepEqual(s.malformedByReason, { [BAD_TS]: 4 });
        assert.equal(s.flows, 2);
        assert.equal(s.files[0].malformed, 4);
        assert.equal(s.files[0].error, undefined);
        const times = s as unknown as { firstPacket: string; lastPacket: string };
        assert.equal(times.firstPacket, expectedFlow(a.meta, a.frames).firstSeen, 'the time span is the good packets’');
        assert.equal(times.lastPacket, expectedFlow(b.meta, b.frames).lastSeen);
      }
      const flows = await exportFlows(db);
      assert.equal(flows.length, 2, JSON.stringify(flows));
      assertFlow(findFlow(flows, a.meta.clientIp, a.meta.serverIp), expectedFlow(a.meta, a.frames), 'a');
      assertFlow(findFlow(flows, b.meta.clientIp, b.meta.serverIp), expectedFlow(b.meta, b.frames), 'b');
    });
  });

  it('classic pcap: a fraction of a second or more (µs >= 1e6, ns >= 1e9), in either byte order, is a malformed packet', async () => {
    await withTempDir(async (dir) => {
      const a = conv(3);
      const b = conv(4);
      const c = conv(5);
      const micro: PcapFrame[] = [
        ...a.frames.slice(0, 5),
        badCopy<PcapFrame>(a, { rawTs: { sec: BASE + 30, frac: 1_000_000 } }),
        badCopy<PcapFrame>(a, { rawTs: { sec: 0xffffffff, frac: 0xffffffff } }),
        ...a.frames.slice(5),
      ];
      const nano: PcapFrame[] = [...b.frames.slice(0, 5), badCopy<PcapFrame>(b, { rawTs: { sec: BASE + 40, frac: 1_000_000_000 } }), ...b.frames.slice(5)];
      const be: PcapFrame[] = [badCopy<PcapFrame>(c, { rawTs: { sec: BASE + 50, frac: 2_000_000 } }), ...c.frames];
      const files = [join(dir, 'micro.pcap'), join(dir, 'nano.pcap'), join(dir, 'be.pcap')];
      writeFileSync(files[0], pcap({ linktype: LINKTYPE.ETHERNET }, micro));
      writeFileSync(files[1], pcap({ linktype: LINKTYPE.ETHERNET, resolution: 'nano' }, nano));
      writeFileSync(files[2], pcap({ linktype: LINKTYPE.ETHERNET, endian: 'be' }, be));
      const { stored, db } = await importBoth(dir, files);
      const s = stored.summary;
      assert.deepEqual(
        s.files.map((f) => [f.packets, f.malformed]),
        [
          [micro.length, 2],
          [nano.length, 1],
          [be.length, 1],
        ],
      );
      assert.deepEqual(s.malformedByReason, { [BAD_TS]: 4 });
      const flows = await exportFlows(db);
      assert.equal(flows.length, 3, JSON.stringify(flows));
      assertEach(
        [a, b, c].map((x, i): [string, () => void] => [
          files[i],
          () => assertFlow(findFlow(flows, x.meta.clientIp, x.meta.serverIp), expectedFlow(x.meta, x.frames), files[i]),
        ]),
      );
    });
  });

  it('old and edge times are kept: 1970 captures, time 0, and up to the last microsecond before 2200-01-01', async () => {
    await withTempDir(async (dir) => {
      const old = conv(6, ts(22, 5)); // 1970-01-01T00:00:22.000005Z, as in several nDPI captures
      const zero = conv(7, 0n);
      const late = conv(8, ts(7_258_118_399, 999_990)); // ends after 2199-12-31T23:59:59.99999
      const lastGood = ts(7_258_118_399, 999_999);
      const firstBad = ts(7_258_118_400);
      const edge: PcapngFrame[] = [
        ...late.frames.filter((f) => f.ts < lastGood),
        badCopy<PcapngFrame>(late, { ts: lastGood, units: lastGood / 1000n }),
        badCopy<PcapngFrame>(late, { ts: firstBad, units: firstBad / 1000n }),
      ];
      assert.equal(
        late.frames.every((f) => f.ts < lastGood),
        false,
        'the conversation runs into 2200 (its later packets are bad too)',
      );
      const files = [join(dir, 'old.pcap'), join(dir, 'zero.pcapng'), join(dir, 'edge.pcapng')];
      writeFileSync(files[0], pcap({ linktype: LINKTYPE.ETHERNET }, old.frames));
      writeFileSync(files[1], pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET, tsresol: 9 }] }, frames: zero.frames }));
      writeFileSync(files[2], pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, frames: edge }));
      const { stored, db } = await importBoth(dir, files);
      const s = stored.summary;
      assert.deepEqual(
        s.files.map((f) => f.malformed),
        [0, 0, 1],
        JSON.stringify(s.files),
      );
      assert.deepEqual(s.malformedByReason, { [BAD_TS]: 1 });
      const flows = await exportFlows(db);
      assertFlow(findFlow(flows, old.meta.clientIp, old.meta.serverIp), expectedFlow(old.meta, old.frames), '1970');
      assertFlow(findFlow(flows, zero.meta.clientIp, zero.meta.serverIp), expectedFlow(zero.meta, zero.frames), 'time 0');
      const kept = edge.slice(0, -1);
      assertFlow(
        findFlow(flows, late.meta.clientIp, late.meta.serverIp),
        { firstSeen: expectedFlow(late.meta, kept).firstSeen, lastSeen: '2199-12-31T23:59:59.999999Z' },
        'the last microsecond before 2200',
      );
    });
  });

  it('several files: a broken file in the middle (garbage, a corrupt block, a read error, bad times) leaves the others imported, is named, and the exit code is 1', async () => {
    await withTempDir(async (dir) => {
      const first = conv(10);
      const last = conv(11);
      const cut = conv(12);
      const times = conv(13);
      const firstFile = join(dir, 'first.pcap');
      writeFileSync(firstFile, pcap({ linktype: LINKTYPE.ETHERNET }, first.frames));
      const lastFile = join(dir, 'last.pcapng');
      writeFileSync(lastFile, pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, frames: last.frames }));
      const garbage = join(dir, 'garbage.pcapng');
      writeFileSync(garbage, Buffer.from('\n\r\r\n not a section header at all '.repeat(20)));
      // A block length that is not a multiple of 4 after 6 good packets: those 6 stay imported.
      const good6 = pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, frames: cut.frames.slice(0, 6) });
      const corrupt = Buffer.concat([good6, Buffer.from(pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, frames: cut.frames.slice(6) }))]);
      corrupt.writeUInt32LE(0x00000007, good6.length + 4); // the second section header's length
      const corruptFile = join(dir, 'corrupt.pcapng');
      writeFileSync(corruptFile, corrupt);
      const badTimes = join(dir, 'bad-times.pcapng');
      writeFileSync(
        badTimes,
        pcapng({
          options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] },
          frames: [...times.frames, badCopy<PcapngFrame>(times, { units: 0xffffffff_ffffffffn })],
        }),
      );
      // A read that fails with EIO after the file opened: not a format error, an exception of the file system.
      const readError = '/proc/self/mem';
      const broken = [garbage, corruptFile, badTimes, ...(existsSync(readError) ? [readError] : [])];
      const files = [firstFile, ...broken, lastFile];
      const { stored, dry, db } = await importBoth(dir, files, 1);
      for (const r of [stored, dry]) {
        const s = r.summary;
        const entry = (f: string) => s.files.find((e) => e.path === f);
        assertEach([
          ...[garbage, corruptFile, ...(existsSync(readError) ? [readError] : [])].map((f): [string, () => void] => [
            f,
            () => {
              assert.equal(linesMentioning(r.stderr, f).length, 1, `one stderr line names ${f}:\n${r.stderr}`);
              assert.ok(entry(f)?.error, `files[] gives ${f}'s error: ${JSON.stringify(s.files)}`);
            },
          ]),
          ...[firstFile, badTimes, lastFile].map((f): [string, () => void] => [f, () => assert.equal(entry(f)?.error, undefined, JSON.stringify(entry(f)))]),
          ['corrupt', () => assert.equal(entry(corruptFile)?.packets, 6)],
          ['bad times', () => assert.deepEqual(s.malformedByReason, { [BAD_TS]: 1 })],
          ['flows', () => assert.equal(s.flows, 4)],
        ]);
      }
      const flows = await exportFlows(db);
      assert.equal(flows.length, 4, JSON.stringify(flows));
      assertFlow(findFlow(flows, first.meta.clientIp, first.meta.serverIp), expectedFlow(first.meta, first.frames), 'first file');
      assertFlow(findFlow(flows, last.meta.clientIp, last.meta.serverIp), expectedFlow(last.meta, last.frames), 'last file');
      assertFlow(findFlow(flows, times.meta.clientIp, times.meta.serverIp), expectedFlow(times.meta, times.frames), 'bad-times file');
      assertFlow(
        findFlow(flows, cut.meta.clientIp, cut.meta.serverIp),
        expectedFlow({ ...cut.meta, tcpState: 'established', clientTcpFlags: 0x1a, serverTcpFlags: 0x1a }, cut.frames.slice(0, 6)),
        'corrupt file',
      );
    });
  });
});
