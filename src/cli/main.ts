#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=60
// The `flowlens` command line.
// The shebang's flags keep V8's heap near what is live. Flow records live from their flow's end to
// their batch's write, long enough to leave a large young generation, and V8's own growing factor
// let the old space grow far past the live data. On the benchmark capture, semi-spaces of 4 MB
// instead of 16 took ~35 MB off the import's peak, and a growing factor of 1.6 another ~35 MB
// (to ~255 MB), for ~3% of its speed. Once the import's per-packet allocations were cut, 8 MB
// semi-spaces cost no more peak memory than 4 (252 against 251 MB, medians of 4 A/B pairs under
// GNU time) and were ~4% faster (2.69 against 2.79 s).
// Tests and the benchmark run the CLI with the flags of this line (test/bench/flowlens.ts).
import { Argument, Command, CommanderError, Option } from 'commander';
import { LOG_FORMATS, programLogger } from './logger.js';
import { DEFAULT_SPOOL_WAIT_SEC, runImport } from './import-command.js';
import { addExportSelectionOptions, exportSelectionFrom, runExport, type ExportFormat, type ExportKind } from './export-command.js';
import { addFlowOptions, addNegatableOption, addStoreOptions, flowOptionsFrom, nonNegativeNumber, positiveInteger, storeOptionsFrom } from './options.js';
import { defaultWorkerCount } from '../capture/live.js';
import { addPacketsDirOption, addPcapCommand, packetsDirFrom } from './pcap-command.js';

/**
 * The `flowlens` program. `serve`, `capture` and `run` load the GraphQL server, libpcap and NATS;
 * `import` and `export` need none of them, so those modules are loaded only for the other
 * commands (and for top-level help), which keeps a small import quick to start.
 */
export async function buildProgram(argv: string[] = process.argv): Promise<Command> {
  const program = new Command()
    .name('flowlens')
    .description('Network traffic monitor: capture files and interfaces into flows, hosts and traffic series.')
    .version('0.1.0')
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
        .env('FLOWLENS_LOG_LEVEL')
        .default('info'),
    )
    .addOption(
      new Option('--log-format <format>', 'logs on stderr as JSON lines or pretty lines (auto: pretty on a terminal)')
        .choices(LOG_FORMATS)
        .env('FLOWLENS_LOG_FORMAT')
        .default('auto'),
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  const importCmd = program
    .command('import')
    .description('import pcap/pcapng files into the store')
    .argument('<file...>', 'capture files (pcap or pcapng)')
    .option('--json', 'print the summary as one JSON object on stdout')
    .option('--no-progress', 'no progress bar or progress lines')
    .addOption(new Option('--server <url>', 'import through a running `flowlens serve` (it owns the store)').env('FLOWLENS_SERVER'))
    .addOption(new Option('--token <token>', "the server's bearer token").env('FLOWLENS_TOKEN'))
    .addOption(new Option('--dry-run', 'read and decode the files and print the summary; open no store, write nothing').conflicts('server'))
    .addOption(
      new Option('--workers <n>', 'decode worker threads (1: decode in the reading thread); the records are the same whatever the number')
        .env('FLOWLENS_WORKERS')
        .argParser(positiveInteger)
        .default(defaultWorkerCount()),
    )
    .addOption(
      new Option('--spool-wait <seconds>', 'QuestDB: wait this long for rows in the outage spool to be sent before exiting (75 if some are left)')
        .env('FLOWLENS_SPOOL_WAIT')
        .argParser(nonNegativeNumber)
        .default(DEFAULT_SPOOL_WAIT_SEC),
    );
  addStoreOptions(importCmd);
  addFlowOptions(importCmd);
  addPacketsDirOption(importCmd);
  addNegatableOption(
    importCmd,
    '--no-packet-index',
    "do not index where each flow's packets are (no `flowlens pcap` for this import)",
    'FLOWLENS_PACKET_INDEX',
  );
  importCmd.addOption(
    new Option(
      '--copy-packets',
      'copy the files into the packet store (<packets-dir>/files) so that their packets can be extracted after the originals move',
    ).env('FLOWLENS_COPY_PACKETS'),
  );
  importCmd.action(async (files: string[], o: Record<string, unknown>) => {
    const logger = programLogger(program);
    if (o.copyPackets && o.packetIndex === false) {
      process.stderr.write('flowlens import: --copy-packets needs the packet index (drop --no-packet-index)\n');
      process.exitCode = 2;
      return;
    }
    process.exitCode = await runImport(
      files,
      {
        ...storeOptionsFrom(o),
        ...flowOptionsFrom(o),
        json: Boolean(o.json),
        progress: o.progress as boolean,
        server: o.server as string | undefined,
        token: o.token as string | undefined,
        dryRun: Boolean(o.dryRun),
        spoolWait: o.spoolWait as number,
        workers: o.workers as number,
        packetsDir: o.packetIndex === false ? undefined : packetsDirFrom(o),
        copyPackets: Boolean(o.copyPackets),
      },
      logger,
    );
  });

  const exportCmd = program
    .command('export')
    .description('print every flow (segments summed), every host, or every anomaly')
    .addArgument(new Argument('<what>', 'flows, hosts or anomalies').choices(['flows', 'hosts', 'anomalies']))
    .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv', 'zeek', 'zeek-json']).default('jsonl'))
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .addOption(
      new Option('--networks <file>', "named networks (see import): with --format zeek, local_orig/local_resp are theirs (role other than 'outside')").env(
        'FLOWLENS_NETWORKS',
      ),
    )
    .addOption(
      new Option('--server <url>', 'flows: read through a running `flowlens serve` (its API), e.g. while it holds the DuckDB file').env(
        'FLOWLENS_EXPORT_SERVER',
      ),
    )
    .addOption(new Option('--token <token>', "with --server: the server's bearer token").env('FLOWLENS_TOKEN'));
  addStoreOptions(exportCmd);
  addExportSelectionOptions(exportCmd);
  exportCmd.action(async (what: ExportKind, o: Record<string, unknown>) => {
    process.exitCode = await runExport(what, {
      ...storeOptionsFrom(o),
      log: programLogger(program),
      format: o.format as ExportFormat,
      output: o.output as string | undefined,
      selection: exportSelectionFrom(o),
      networks: o.networks as string | undefined,
      server: o.server as string | undefined,
      token: o.token as string | undefined,
    });
  });

  addPcapCommand(program, storeOptionsFrom);

  const sub = argv[2];
  if (sub !== 'import' && sub !== 'export' && sub !== 'pcap') {
    const { addServeCommand } = await import('./serve-command.js');
    const { addCaptureCommand, addRunCommand } = await import('./capture-command.js');
    addServeCommand(program, storeOptionsFrom);
    addCaptureCommand(program, storeOptionsFrom);
    // `run`, the default: capture on the default interface and serve the API in one process.
    addRunCommand(program, storeOptionsFrom);
  }

  return program;
}

async function main(): Promise<void> {
  // Output piped into `head` and the like: a closed stdout ends the command quietly.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const program = await buildProgram();
  try {
    // `run` is the default command, so commander would hand a mistyped command to it as arguments
    // ("too many arguments for 'run'"): a first word that names no command is said to be one.
    const first = process.argv[2];
    if (first !== undefined && !first.startsWith('-') && first !== 'help' && !program.commands.some((c) => c.name() === first)) {
      const names = program.commands.map((c) => c.name()).join(', ');
      process.stderr.write(`flowlens: unknown command '${first}' (commands: ${names}; see flowlens --help)\n`);
      process.exitCode = 2;
    } else await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has printed the message already; help and version exit 0.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
    } else {
      process.stderr.write(`flowlens: ${(err as Error).message}\n`);
      process.exitCode = 1;
    }
  }
  // The command is done: leave even if a read on a quiet pipe is still pending in the thread
  // pool, once stdout (asynchronous when it is a pipe) has been written out.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  if (process.exitCode === 130) {
    // Interrupted and cleaned up: end by the signal itself, as shells expect of Ctrl-C (status 130).
    // This also avoids waiting, at exit, for a thread-pool read blocked on a quiet pipe.
    process.removeAllListeners('SIGINT');
    process.kill(process.pid, 'SIGINT');
    return;
  }
  process.exit(process.exitCode ?? 0);
}

await main();
