/**
 * `flowlens import` on bad input: truncated, garbage, empty and missing files,
 * unknown link types, malformed packets and bad flags. Nothing may crash; what
 * can be read is imported; problems are reported per file and by reason.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { closedTcpConversation, type ClosedConversation } from './helpers/conversation.js';
import { LINKTYPE, encap, ipv4, payload, tcp, ts, type Frame } from './helpers/frames.js';
import { pcap, pcapHeader, pcapng, pcapngSection, writeCapture } from './helpers/pcap-writer.js';
import {
  assertEach,
  assertFlow,
  exportFlows,
  expectedFlow,
  findFlow,
  importFiles,
  linesMentioning,
  runCli,
  stackTraceLines,
  withTempDir,
  type CliResult,
  type FileSummary,
  type ImportResult,
} from './helpers/cli.js';

const BASE = 1_700_000_000;

/** A closed TCP conversation with 10 packets between 10.50.<n>.1 and 10.50.<n>.2. */
function conv(n: number, start = ts(BASE + n)): ClosedConversation {
  return closedTcpConversation({ ip: `10.50.${n}.1`, port: 40000 + n }, { ip: `10.50.${n}.2`, port: 80 }, start);
}

function assertNoCrash(r: CliResult): void {
  assert.notEqual(r.signal, 'SIGKILL', 'timed out');
  assert.deepEqual(stackTraceLines(r.stderr), [], `stack trace on stderr:\n${r.stderr}`);
}

/** Exactly one stderr line names `file`; returns it. */
function oneLineAbout(r: CliResult, file: string): string {
  const lines = linesMentioning(r.stderr, file);
  assert.equal(lines.length, 1, `expected one stderr line naming ${file}, got:\n${r.stderr}`);
  assert.ok(lines[0].length > file.length + 5, `the line should give a reason: ${lines[0]}`);
  return lines[0];
}

function fileEntry(r: ImportResult, file: string) {
  const e = r.summary.files.find((f) => f.path === file || f.path.endsWith(file.split('/').pop()!));
  assert.ok(e, `no files[] entry for ${file}: ${JSON.stringify(r.summary.files)}`);
  return e;
}

describe('flowlens import: bad input', () => {
  it('truncated files (cut mid-record, mid-record-header, mid-block) import the packets before the cut and report the file', async () => {
    await withTempDir(async (dir) => {
      const a = conv(1),
        b = conv(2),
        c = conv(3);
      // pcap cut in the middle of the 7th record's data.
      const pa = pcap({ linktype: LINKTYPE.ETHERNET }, a.frames);
      const cutA = 24 + a.frames.slice(0, 6).reduce((n, f) => n + 16 + f.data.length, 0) + 16 + 10;
      const fileA = writeCapture(join(dir, 'cut-data.pcap'), pa.subarray(0, cutA));
      // Big-endian pcap cut inside the 7th record header.
      const pb = pcap({ linktype: LINKTYPE.ETHERNET, endian: 'be' }, b.frames);
      const cutB = 24 + b.frames.slice(0, 6).reduce((n, f) => n + 16 + f.data.length, 0) + 7;
      const fileB = writeCapture(join(dir, 'cut-header.pcap'), pb.subarray(0, cutB));
      // pcapng cut inside the 7th Enhanced Packet Block.
      const head = pcapngSection({ interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, c.frames.slice(0, 6));
      const whole = pcapng({ options: { interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, frames: c.frames });
      const fileC = writeCapture(join(dir, 'cut-block.pcapng'), whole.subarray(0, head.length + 30));

      // tshark prints the complete packets and exits non-zero; a warning with exit 0 also "reports the
      // problem". Either way every complete packet must be imported, and the cut-short tail (if it is
      // counted at all) must be counted as malformed, never as a good packet.
      const r = await importFiles(join(dir, 'db.duckdb'), [fileA, fileB, fileC], { expectCode: null });
      assertNoCrash(r);
      assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}`);
      const flows = await exportFlows(join(dir, 'db.duckdb'));
      const cuts = [
        { file: fileA, x: a },
        { file: fileB, x: b },
        { file: fileC, x: c },
      ];
      assertEach(
        cuts.map(({ file, x }): [string, () => void] => [
          file,
          () => {
            oneLineAbout(r, file);
            const entry: FileSummary & { warning?: string } = fileEntry(r, file);
            assert.equal(entry.packets - entry.malformed, 6, `complete packets before the cut: ${JSON.stringify(entry)}`);
            assert.ok(entry.packets <= 7);
            const note = entry.error ?? entry.warning;
            assert.ok(typeof note === 'string' && note.length > 0, `files[] entry should say what went wrong: ${JSON.stringify(entry)}`);
            assertFlow(
              findFlow(flows, x.meta.clientIp, x.meta.serverIp),
              expectedFlow({ ...x.meta, tcpState: 'established', clientTcpFlags: 0x1a, serverTcpFlags: 0x1a }, x.frames.slice(0, 6)),
              file,
            );
          },
        ]),
      );
      assert.equal(r.summary.packets - r.summary.malformed, 18);
    });
  });

  it('a pcapng packet block too short for its fixed fields fails the file at that block, instead of reading them from the blocks after it', async () => {
    await withTempDir(async (dir) => {
      const c = conv(23);
      const options = { interfaces: [{ linktype: LINKTYPE.ETHERNET }] };
      const head = pcapngSection(options, c.frames.slice(0, 3));
      const tail = pcapng({ options, frames: c.frames.slice(3) }).subarray(pcapngSection(options, []).length);
      const short = Buffer.alloc(12); // an Enhanced Packet Block of 12 bytes: no interface, time or lengths
      short.writeUInt32LE(6, 0);
      short.writeUInt32LE(12, 4);
      short.writeUInt32LE(12, 8);
      const file = writeCapture(join(dir, 'short-block.pcapng'), Buffer.concat([head, short, tail]));
      const db = join(dir, 'db.duckdb');
      const r = await importFiles(db, [file], { expectCode: 1 });
      assertNoCrash(r);
      assert.match(oneLineAbout(r, file), new RegExp(`byte ${head.length}.*too short`));
      assert.equal(fileEntry(r, file).packets, 3, JSON.stringify(r.summary.files));
      assert.equal(r.summary.malformed, 0);
    });
  });

  it('a garbage file fails with exit 1 and one stderr line naming it; the good file after it is still imported', async () => {
    await withTempDir(async (dir) => {
      const garbage = join(dir, 'garbage.pcap');
      writeFileSync(garbage, Buffer.from('This is not a capture file at all, just some text.\n'.repeat(100)));
      const good = conv(4);
      const goodFile = writeCapture(join(dir, 'good.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, good.frames));
      const db = join(dir, 'db.duckdb');
      const r = await importFiles(db, [garbage, goodFile], { expectCode: 1 });
      assertNoCrash(r);
      oneLineAbout(r, garbage);
      assert.deepEqual(linesMentioning(r.stderr, goodFile), [], 'the good file is not reported');
      const bad = fileEntry(r, garbage);
      assert.equal(bad.packets, 0);
      assert.ok(bad.error, 'files[].error set for the garbage file');
      const ok = fileEntry(r, goodFile);
      assert.equal(ok.packets, good.frames.length);
      assert.equal(ok.error, undefined);
      assert.equal(r.summary.packets, good.frames.length);
      const flows = await exportFlows(db);
      assert.equal(flows.length, 1);
      assertFlow(flows[0], expectedFlow(good.meta, good.frames), 'good file');
    });
  });

  it('a nonexistent file fails with exit 1 and a clear message; other files are still imported', async () => {
    await withTempDir(async (dir) => {
      const missing = join(dir, 'does-not-exist.pcap');
      const good = conv(5);
      const goodFile = writeCapture(join(dir, 'good.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, good.frames));
      const db = join(dir, 'db.duckdb');
      const r = await importFiles(db, [missing, goodFile], { expectCode: 1 });
      assertNoCrash(r);
      assert.match(oneLineAbout(r, missing), /no such file|not found|does not exist|ENOENT|cannot open|can't open/i);
      assert.equal(fileEntry(r, goodFile).packets, good.frames.length);
      assert.equal((await exportFlows(db)).length, 1);
    });
  });

  it('an unknown link type (DLT 147) counts its packets as malformed with a reason, without crashing', async () => {
    await withTempDir(async (dir) => {
      const odd = conv(6);
      const oddFile = writeCapture(
        join(dir, 'user0.pcap'),
        pcap(
          { linktype: LINKTYPE.USER0 },
          odd.packets.slice(0, 4).map((p) => ({ ts: p.ts, data: encap(LINKTYPE.USER0, p.ip) })),
        ),
      );
      const good = conv(7);
      const goodFile = writeCapture(join(dir, 'good.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, good.frames));
      const db = join(dir, 'db.duckdb');
      const r = await importFiles(db, [oddFile, goodFile]);
      assertNoCrash(r);
      assert.equal(fileEntry(r, oddFile).packets, 4);
      assert.equal(fileEntry(r, oddFile).malformed, 4);
      assert.equal(r.summary.malformed, 4);
      const reasons = Object.entries(r.summary.malformedByReason);
      assert.equal(reasons.length, 1, JSON.stringify(r.summary.malformedByReason));
      assert.equal(reasons[0][1], 4);
      assert.ok(reasons[0][0].length > 0);
      assert.equal(r.summary.packets, 4 + good.frames.length);
      const flows = await exportFlows(db);
      assert.equal(flows.length, 1, JSON.stringify(flows));
      assertFlow(flows[0], expectedFlow(good.meta, good.frames), 'good file');
    });
  });

  it('malformed packets are counted by reason and the good packets around them still form their flows', async () => {
    await withTempDir(async (dir) => {
      interface Case {
        name: string;
        bad: (c: ReturnType<typeof conv>) => Frame;
        /**
         * Whether the malformed packet still belongs to its flow: when its ports can be read it does,
         * as in tshark (the reference for per-flow counts), which also counts such frames by 5-tuple.
         * Without a usable IP header there is no flow to count it in.
         */
        inFlow: boolean;
      }
      // Each malformed packet sits in the middle of a good conversation with the same addresses and ports.
      const seg = (c: ReturnType<typeof conv>, o: Partial<Parameters<typeof tcp>[0]> = {}) =>
        tcp({ srcPort: c.meta.clientPort!, dstPort: 80, seq: 1101, ack: 5001, flags: 0x18, payload: payload(30), ...o });
      const at = (c: ReturnType<typeof conv>) => c.packets[4].ts + 500_000n;
      const cases: Case[] = [
        {
          name: 'ipv4-ihl-below-20',
          inFlow: false,
          bad: (c) => ({ ts: at(c), data: encap(LINKTYPE.ETHERNET, ipv4({ src: c.meta.clientIp, dst: c.meta.serverIp, l4: seg(c), ihlWords: 4 })) }),
        },
        {
          name: 'ipv4-total-length-beyond-frame',
          inFlow: true,
          bad: (c) => {
            const good = ipv4({ src: c.meta.clientIp, dst: c.meta.serverIp, l4: seg(c) });
            return {
              ts: at(c),
              data: encap(LINKTYPE.ETHERNET, ipv4({ src: c.meta.clientIp, dst: c.meta.serverIp, l4: seg(c), totalLength: good.length + 100 })),
            };
          },
        },
        {
          name: 'tcp-data-offset-below-5',
          inFlow: true,
          bad: (c) => ({ ts: at(c), data: encap(LINKTYPE.ETHERNET, ipv4({ src: c.meta.clientIp, dst: c.meta.serverIp, l4: seg(c, { dataOffsetWords: 3 }) })) }),
        },
        {
          name: 'snaplen-cut-inside-tcp-header',
          inFlow: true,
          bad: (c) => {
            const full = encap(LINKTYPE.ETHERNET, ipv4({ src: c.meta.clientIp, dst: c.meta.serverIp, l4: seg(c) }));
            return { ts: at(c), data: full.subarray(0, 14 + 20 + 10), origLen: full.length };
          },
        },
      ];
      const files: string[] = [];
      const convs = cases.map((_k, i) => conv(10 + i));
      const badFrames: Frame[] = [];
      let totalPackets = 0;
      let totalBytes = 0;
      cases.forEach((k, i) => {
        const c = convs[i];
        const bad = { ...k.bad(c), from: 'client' as const };
        badFrames.push(bad);
        const frames = [...c.frames.slice(0, 5), bad, ...c.frames.slice(5)];
        totalPackets += frames.length;
        totalBytes += frames.reduce((n, f) => n + (f.origLen ?? f.data.length), 0);
        files.push(writeCapture(join(dir, `${k.name}.pcap`), pcap({ linktype: LINKTYPE.ETHERNET }, frames)));
      });
      const db = join(dir, 'db.duckdb');
      const r = await importFiles(db, files);
      assertNoCrash(r);
      const s = r.summary;
      assert.deepEqual(
        files.map((f) => fileEntry(r, f).malformed),
        [1, 1, 1, 1],
        `malformed per file (${cases.map((k) => k.name).join(', ')}): ${JSON.stringify(s.files)}`,
      );
      assert.equal(s.malformed, 4);
      assert.equal(
        Object.values(s.malformedByReason).reduce((n, v) => n + v, 0),
        4,
        JSON.stringify(s.malformedByReason),
      );
      // A bad IHL, a bad total length and a bad TCP data offset are three different faults.
      assert.ok(Object.keys(s.malformedByReason).length >= 3, `reasons should tell the faults apart: ${JSON.stringify(s.malformedByReason)}`);
      assert.equal(s.packets, totalPackets, 'malformed packets still count as packets read');
      assert.equal(s.bytes, totalBytes);
      const flows = await exportFlows(db);
      assert.equal(flows.length, 4, JSON.stringify(flows));
      // A malformed packet counts in its flow exactly when its ports could be read (see Case.inFlow).
      assertEach([
        ...convs.map((c, i): [string, () => void] => [
          cases[i].name,
          () =>
            assertFlow(
              findFlow(flows, c.meta.clientIp, c.meta.serverIp),
              expectedFlow(c.meta, cases[i].inFlow ? [...c.frames, badFrames[i]] : c.frames),
              cases[i].name,
            ),
        ]),
        // A malformed IP packet is malformed, not also non-IP.
        ['nonIp', () => assert.equal(s.nonIp, 0, `nonIp counts malformed IP packets: ${JSON.stringify(s)}`)],
      ]);
    });
  });

  it('empty captures (pcap and pcapng with headers but no packets) import cleanly', async () => {
    await withTempDir(async (dir) => {
      const files = [
        writeCapture(join(dir, 'empty.pcap'), pcapHeader({ linktype: LINKTYPE.ETHERNET })),
        writeCapture(join(dir, 'empty-be-nano.pcap'), pcapHeader({ linktype: LINKTYPE.ETHERNET, endian: 'be', resolution: 'nano' })),
        writeCapture(join(dir, 'empty.pcapng'), pcapngSection({ interfaces: [{ linktype: LINKTYPE.ETHERNET }] }, [])),
        writeCapture(join(dir, 'shb-only.pcapng'), pcapngSection({ interfaces: [] }, [])),
      ];
      const db = join(dir, 'db.duckdb');
      const r = await importFiles(db, files);
      assertNoCrash(r);
      assert.equal(r.summary.packets, 0);
      assert.equal(r.summary.flows, 0);
      assert.equal(r.summary.malformed, 0);
      assert.deepEqual(
        r.summary.files.map((f) => [f.packets, f.error]),
        files.map(() => [0, undefined]),
      );
      assert.deepEqual(await exportFlows(db), []);
    });
  });

  it('a zero-byte file does not crash the import of the files beside it', async () => {
    await withTempDir(async (dir) => {
      const zero = join(dir, 'zero.pcap');
      writeFileSync(zero, new Uint8Array(0));
      const good = conv(20);
      const goodFile = writeCapture(join(dir, 'good.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, good.frames));
      const db = join(dir, 'db.duckdb');
      // tshark reads a zero-byte file as an empty capture (exit 0); refusing it as unreadable (exit 1) is also fair.
      const r = await importFiles(db, [zero, goodFile], { expectCode: null });
      assertNoCrash(r);
      assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
      if (r.code === 1) oneLineAbout(r, zero);
      assert.equal(fileEntry(r, zero).packets, 0);
      assert.equal(r.summary.packets, good.frames.length);
      assert.equal((await exportFlows(db)).length, 1);
    });
  });

  it('a bad flag is a usage error: exit 2 and commander names the option', async () => {
    await withTempDir(async (dir) => {
      const file = writeCapture(join(dir, 'x.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, conv(21).frames));
      const r = await runCli(['import', file, '--db', join(dir, 'db.duckdb'), '--no-such-flag']);
      assertNoCrash(r);
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
      assert.match(r.stderr, /--no-such-flag/);
      assert.match(r.stderr, /unknown option/i);
    });
  });

  it('--duckdb-threads takes a positive integer: 0 is a usage error, 2 imports', async () => {
    await withTempDir(async (dir) => {
      const file = writeCapture(join(dir, 'x.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, conv(22).frames));
      const bad = await runCli(['import', file, '--db', join(dir, 'bad.duckdb'), '--duckdb-threads', '0']);
      assertNoCrash(bad);
      assert.equal(bad.code, 2, `exit code; stderr: ${bad.stderr}`);
      assert.match(bad.stderr, /--duckdb-threads/);
      const db = join(dir, 'good.duckdb');
      const good = await runCli(['import', file, '--db', db, '--duckdb-threads', '2', '--json']);
      assert.equal(good.code, 0, good.stderr);
      assert.equal((await exportFlows(db)).length, 1);
    });
  });

  it('import without any file is a usage error: exit 2', async () => {
    await withTempDir(async (dir) => {
      const r = await runCli(['import', '--db', join(dir, 'db.duckdb')]);
      assertNoCrash(r);
      assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
      assert.notEqual(r.stderr.trim(), '');
    });
  });

  it('the warning about a truncated file is a JSON log line off a terminal, pretty with --log-format pretty or FLOWLENS_LOG_FORMAT=pretty; a bad format is a usage error', async () => {
    await withTempDir(async (dir) => {
      const a = conv(4);
      const whole = pcap({ linktype: LINKTYPE.ETHERNET }, a.frames);
      const file = writeCapture(join(dir, 'cut.pcap'), whole.subarray(0, whole.length - 5));
      const warning = (r: CliResult) => linesMentioning(r.stderr, 'file ends inside a record');
      const run = (args: string[], env: Record<string, string> = {}) =>
        runCli(['import', file, '--db', join(dir, 'db.duckdb'), '--no-progress', ...args], { env });

      const json = await run([]);
      assert.equal(json.code, 0, json.stderr);
      assert.equal(warning(json).length, 1, json.stderr);
      const line = JSON.parse(warning(json)[0]) as { level: number; msg: string };
      assert.equal(line.level, 40, 'pino level warn');
      assert.match(line.msg, /cut\.pcap: file ends inside a record/);

      for (const [args, env] of [
        [['--log-format', 'pretty'], {}],
        [[], { FLOWLENS_LOG_FORMAT: 'pretty' }],
      ] as const) {
        const pretty = await run([...args], env);
        assert.equal(pretty.code, 0, pretty.stderr);
        assert.equal(warning(pretty).length, 1, pretty.stderr);
        assert.match(warning(pretty)[0], /^\[[\d:.]+\] WARN: .*cut\.pcap: file ends inside a record/, `${args.join(' ')} ${JSON.stringify(env)}`);
      }

      const bad = await run(['--log-format', 'xml']);
      assert.equal(bad.code, 2, bad.stderr);
      assert.match(bad.stderr, /--log-format.*'xml' is invalid/);
    });
  });
});
