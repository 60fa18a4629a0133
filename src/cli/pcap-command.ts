// `flowlens pcap`: the packets of a flow (--flow), of the flows an anomaly is about (--anomaly) or
// of the flows a filter selects in a time range (--filter, --from, --to), as a capture file
// written byte for byte from where the packets were captured (src/packets). Exit codes: 0 written,
// 1 the packets are not held (never indexed, or their files evicted or changed: said as such, never
// as an empty capture), 2 a bad flag.
import { FLOW_FILTER_KEYS } from '../records/flow-filter.js';
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { checkSources, extractPackets, PacketsUnavailable } from '../packets/extract.js';
import { PacketIndexReader } from '../packets/index-reader.js';
import { DEFAULT_KEEP, type KeepPacketsOptions } from '../packets/keeper.js';
import { flowIdsOf, PacketSelectionError, packetsOfFlows } from '../packets/select.js';
import { DEFAULT_DB_PATH, openStore, type StoreOptions } from '../store/index.js';
import type { StoreReader } from '../store/types.js';
import { type Logger, programLogger } from './logger.js';
import { addStoreOptions, positiveInteger } from './options.js';

/** Where the packet index is by default: beside the DuckDB file (./data/packets). */
export function defaultPacketsDir(db: string | undefined): string {
  return join(dirname(db ?? DEFAULT_DB_PATH), 'packets');
}

/** --packets-dir, shared by import (which writes the index), pcap and serve (which read it). */
export function addPacketsDirOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('--packets-dir <dir>', 'the packet index (where each flow\'s packets are), default: "packets" beside --db').env('FLOWLENS_PACKETS_DIR'),
  );
}

/** --packets-dir, else a live capture's --keep-packets, else "packets" beside --db. */
export function packetsDirFrom(o: Record<string, unknown>): string {
  return (o.packetsDir as string | undefined) ?? (o.keepPackets as string | undefined) ?? defaultPacketsDir(o.db as string | undefined);
}

/** A size: bytes, or with a unit K, M, G or T (powers of 1024), e.g. 500M. */
export function parseSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`not a size: '${value}' (bytes, or with K, M, G or T, e.g. 500M)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(m[1]) * unit);
}

function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`not a whole number: '${value}'`);
  return Number(value);
}

/** The live packet store's flags (capture and run). */
export function addKeepPacketsOptions(cmd: Command): Command {
  const d = DEFAULT_KEEP;
  return cmd
    .addOption(
      new Option('--keep-packets <dir>', "keep the flows' packets in a rolling store of pcapng files in DIR (flowlens pcap, /pcap)").env(
        'FLOWLENS_KEEP_PACKETS',
      ),
    )
    .addOption(
      new Option('--keep-max-size <size>', 'size cap of the packet store, oldest files deleted first (0: none)')
        .env('FLOWLENS_KEEP_MAX_SIZE')
        .argParser(parseSize)
        .default(d.maxBytes, '1G'),
    )
    .addOption(
      new Option('--keep-max-age <seconds>', 'age cap of the packet store (0: none)').env('FLOWLENS_KEEP_MAX_AGE').argParser(wholeNumber).default(d.maxAgeSec),
    )
    .addOption(
      new Option('--keep-snaplen <bytes>', 'bytes kept of each packet (0: all that was captured)')
        .env('FLOWLENS_KEEP_SNAPLEN')
        .argParser(wholeNumber)
        .default(d.snaplen),
    )
    .addOption(
      new Option('--keep-flow-packets <n>', 'packets kept of each flow, its first ones (0: all)')
        .env('FLOWLENS_KEEP_FLOW_PACKETS')
        .argParser(wholeNumber)
        .default(d.maxPacketsPerFlow),
    )
    .addOption(
      new Option('--keep-file-size <size>', 'a packet file is closed and indexed at this size')
        .env('FLOWLENS_KEEP_FILE_SIZE')
        .argParser((v) => {
          const size = parseSize(v);
          if (size < 64 * 1024) throw new InvalidArgumentError('a packet file is at least 64K');
          return size;
        })
        .default(d.fileBytes, '64M'),
    )
    .addOption(
      new Option('--keep-file-seconds <seconds>', 'or at this age: packets can be extracted once their file is closed')
        .env('FLOWLENS_KEEP_FILE_SECONDS')
        .argParser(positiveInteger)
        .default(d.fileSeconds),
    );
}

/** The live packet store's settings from its flags; undefined without --keep-packets. */
export function keepPacketsFrom(o: Record<string, unknown>): KeepPacketsOptions | undefined {
  const dir = o.keepPackets as string | undefined;
  if (!dir) return undefined;
  const fileBytes = o.keepFileSize as number;
  return {
    dir,
    maxBytes: o.keepMaxSize as number,
    maxAgeSec: o.keepMaxAge as number,
    snaplen: o.keepSnaplen as number,
    maxPacketsPerFlow: o.keepFlowPackets as number,
    fileBytes,
    fileSeconds: o.keepFileSeconds as number,
    // Write buffers per worker (8 x 4 MiB: as much as the decode ring holds); never more than a file.
    bufferBytes: Math.min(DEFAULT_KEEP.bufferBytes, fileBytes),
    bufferCount: DEFAULT_KEEP.bufferCount,
  };
}

const CLI_NAMES = { flow: '--flow', anomaly: '--anomaly', filter: '--filter', from: '--from', to: '--to' };

export interface PcapCommandOptions extends StoreOptions {
  packetsDir: string;
  flow?: string[];
  anomaly?: string;
  filter?: string;
  from?: string;
  to?: string;
  output?: string;
  log: Logger;
}

/** Runs `flowlens pcap` and returns the exit code. */
export async function runPcap(opts: PcapCommandOptions): Promise<number> {
  if (!opts.output && process.stdout.isTTY) {
    process.stderr.write('flowlens pcap: not writing a capture to a terminal: give -o FILE or redirect stdout\n');
    return 2;
  }
  // Opened only for --anomaly and --filter (a holder object: the closure assigns it).
  const opened: { store?: StoreReader } = {};
  try {
    const { flowIds, anomaly, anomalyFlows } = await flowIdsOf(
      opts,
      async () => {
        opened.store ??= await openStore({ ...opts, readOnly: true });
        return opened.store;
      },
      CLI_NAMES,
    );
    if (opts.flow === undefined || opts.flow.length === 0) {
      opts.log.info(
        { anomaly: anomaly?.anomalyId, flows: flowIds.length, basis: anomalyFlows?.basis, evidenceFlows: anomalyFlows?.total },
        anomalyFlows?.basis === 'evidence'
          ? 'flows the anomaly names as evidence'
          : anomaly
            ? 'flows of the anomaly, guessed from its source, target, port and time span (stored before anomalies named their flows)'
            : 'flows of the filter',
      );
      if (flowIds.length === 0) throw new PacketsUnavailable('no flow matches: nothing to extract');
    }
    const index = new PacketIndexReader(opts.packetsDir);
    const { refs, missing } = await packetsOfFlows(index, flowIds);
    if (refs.length === 0) {
      throw new PacketsUnavailable(
        `the packets of ${flowIds.length === 1 ? `flow ${flowIds[0]}` : `these ${flowIds.length} flows`} are not held in ${opts.packetsDir}: ` +
          'imported without the packet index, removed, or not a flow id the store has',
      );
    }
    if (missing.length > 0)
      opts.log.warn({ missing: missing.slice(0, 20), count: missing.length }, 'some flows have no packets held; the capture has the others');
    // Before the output is created: a flow whose files are gone leaves no empty capture behind.
    await checkSources(refs);
    const out = opts.output ? createWriteStream(opts.output) : process.stdout;
    const result = await extractPackets(refs, (chunk) => {
      if (!out.write(chunk)) return once(out, 'drain').then(() => undefined);
    });
    if (opts.output) {
      out.end();
      await once(out, 'finish');
    }
    opts.log.info({ ...result, flows: flowIds.length - missing.length, output: opts.output ?? '-' }, 'capture written');
    return 0;
  } catch (err) {
    if (err instanceof PacketSelectionError) {
      process.stderr.write(`flowlens pcap: ${err.message}\n`);
      return 2;
    }
    if (err instanceof PacketsUnavailable) {
      process.stderr.write(`flowlens pcap: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await opened.store?.close();
  }
}

export function addPcapCommand(program: Command, storeOptionsFrom: (o: Record<string, unknown>) => StoreOptions): void {
  const cmd = program
    .command('pcap')
    .description('write the packets of a flow, an anomaly or a filtered time range as a capture file, byte for byte as captured')
    .addOption(new Option('--flow <id...>', 'flow id(s) (16 hex digits; several: space or comma separated)'))
    .addOption(
      new Option('--anomaly <id>', "the flows an anomaly names as its evidence (older anomalies: its source's with its target, on its port, while it lasted)"),
    )
    .addOption(
      new Option(
        '--filter <terms>',
        `flows of a filter: 'key=value ...' with keys ${FLOW_FILTER_KEYS.join(', ')} (the API's FlowFilter; host=10.0.0.0/8, serverName=*.example.com)`,
      ),
    )
    .addOption(new Option('--from <time>', 'with --filter: start of the range (ISO 8601 or µs), inclusive'))
    .addOption(new Option('--to <time>', 'with --filter: end of the range, exclusive'))
    .option('-o, --output <file>', 'write to a file instead of stdout');
  addStoreOptions(cmd);
  addPacketsDirOption(cmd);
  cmd.action(async (o: Record<string, unknown>) => {
    process.exitCode = await runPcap({
      ...storeOptionsFrom(o),
      packetsDir: packetsDirFrom(o),
      flow: o.flow as string[] | undefined,
      anomaly: o.anomaly as string | undefined,
      filter: o.filter as string | undefined,
      from: o.from as string | undefined,
      to: o.to as string | undefined,
      output: o.output as string | undefined,
      log: programLogger(program),
    });
  });
}
