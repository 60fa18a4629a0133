// Settings shared by the commands that turn packets into flows, each a flag with an env var.
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { resolveDetectConfig, type DetectConfigInput } from '../detect/index.js';
import { DEFAULT_IDLE, type AggregatorOptions, type IdleTimeouts } from '../flow/aggregator.js';
import { defaultMaxFlows } from '../flow/caps.js';
import type { EnrichSettings } from '../enrich/enricher.js';
import { GeoLookup } from '../enrich/geo.js';
import { NamedNetworks } from '../enrich/networks.js';
import { DEFAULT_DB_PATH, DEFAULT_DUCKDB_CHECKPOINT_MB, DEFAULT_DUCKDB_MEMORY_MB, type StoreOptions } from '../store/index.js';

export interface FlowOptions {
  interval: number;
  activeTimeout: number;
  idle: IdleTimeouts;
  node: string;
  /** Anomaly detection thresholds (a partial config from --detect-config), or false (--no-detect). */
  detect: DetectConfigInput | false;
  /** Application protocol identification (false: --no-dpi). */
  dpi: boolean;
  /** The learned classifier's predictions where DPI names nothing (false: --no-classify). */
  classify: boolean;
  /** Flow and host table caps (--max-flows, --max-hosts); undefined: sized from the machine's memory. */
  maxFlows?: number;
  maxHosts?: number;
  /** Country, AS and network names of flow ends (--geo-db, --asn-db, --networks, --no-geo). */
  enrich?: EnrichSettings;
}

/** Checks a --geo-db / --asn-db file is a MaxMind database (one clear error); the path is kept. */
function mmdbFile(path: string): string {
  try {
    new GeoLookup({ countryDb: path }).close();
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return path;
}

/** Checks a --networks file (one clear error); the path is kept, read again where flows are made. */
function networksFile(path: string): string {
  try {
    NamedNetworks.load(path);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
  return path;
}

/** Reads and checks a --detect-config file: JSON, a partial DetectConfig (src/detect/config.ts). */
export function detectConfigFile(path: string): DetectConfigInput {
  let input: DetectConfigInput;
  try {
    input = JSON.parse(readFileSync(path, 'utf8')) as DetectConfigInput;
    resolveDetectConfig(input);
  } catch (err) {
    throw new InvalidArgumentError(`${path}: ${(err as Error).message}`);
  }
  return input;
}

export function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number.');
  return n;
}

export function nonNegativeNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError('must be a number of 0 or more.');
  return n;
}

export function positiveInteger(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer.');
  return n;
}

const TRUE_WORDS = ['1', 'true', 'yes', 'on'];
const FALSE_WORDS = ['0', 'false', 'no', 'off'];

/**
 * A `--no-X` flag whose environment variable gives X's value: FLOWLENS_DPI=false acts as --no-dpi.
 * Commander's own env() sets a boolean flag whenever its variable is defined, whatever the value,
 * so that FLOWLENS_NO_DPI=0 would turn DPI off. Here the value counts, a flag on the command line
 * wins over the variable, and any value but 1/0, true/false, yes/no or on/off is an error.
 */
export function addNegatableOption(cmd: Command, flags: string, description: string, envVar: string): Command {
  const option = new Option(flags, `${description} (env: ${envVar}=false)`);
  const name = option.attributeName();
  return cmd.addOption(option).hook('preAction', (command) => {
    const raw = process.env[envVar];
    if (raw === undefined || command.getOptionValueSource(name) === 'cli') return;
    const word = raw.trim().toLowerCase();
    if (TRUE_WORDS.includes(word)) command.setOptionValueWithSource(name, true, 'env');
    else if (FALSE_WORDS.includes(word)) command.setOptionValueWithSource(name, false, 'env');
    else command.error(`error: environment variable ${envVar} must be true or false (1/0, yes/no, on/off), not '${raw}'`, { code: 'flowlens.invalidEnv' });
  });
}

export function addStoreOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--db <path>', 'embedded DuckDB file').env('FLOWLENS_DB').default(DEFAULT_DB_PATH))
    .addOption(
      new Option(
        '--questdb <config>',
        "QuestDB ILP configuration string or URL, e.g. 'http::addr=localhost:9000;' or http://localhost:9000 (uses QuestDB instead of the embedded store)",
      ).env('FLOWLENS_QUESTDB'),
    )
    .addOption(
      new Option('--questdb-pg <url>', 'QuestDB PostgreSQL wire URL for reads').env('FLOWLENS_QUESTDB_PG').default('postgres://admin:quest@127.0.0.1:8812/qdb'),
    )
    .addOption(
      new Option('--retention-days <days>', 'QuestDB retention (TTL); 0 keeps everything')
        .env('FLOWLENS_RETENTION_DAYS')
        .argParser((v) => Number(v))
        .default(0),
    )
    .addOption(new Option('--spool-dir <dir>', 'where QuestDB batches wait during an outage').env('FLOWLENS_SPOOL_DIR').default('./data/spool'))
    .addOption(
      new Option('--duckdb-threads <n>', "DuckDB's worker threads (default: 1 for import, one per core otherwise)")
        .env('FLOWLENS_DUCKDB_THREADS')
        .argParser(positiveInteger),
    )
    .addOption(
      new Option('--duckdb-memory-mb <mb>', "DuckDB's memory_limit: past it, queries spill to disk and a write that cannot fails")
        .env('FLOWLENS_DUCKDB_MEMORY_MB')
        .argParser(positiveInteger)
        .default(DEFAULT_DUCKDB_MEMORY_MB),
    )
    .addOption(
      new Option(
        '--duckdb-checkpoint-mb <mb>',
        `DuckDB's checkpoint_threshold: the write-ahead log's size at which committed rows are written into the database file (DuckDB's own is 16)`,
      )
        .env('FLOWLENS_DUCKDB_CHECKPOINT_MB')
        .argParser(positiveInteger)
        .default(DEFAULT_DUCKDB_CHECKPOINT_MB),
    );
}

/** The store's settings from parsed flags: those of addStoreOptions, and --explore-cache-mb where the API is served (addApiOptions). */
export function storeOptionsFrom(o: Record<string, unknown>): StoreOptions {
  return {
    db: o.db as string,
    questdb: o.questdb as string | undefined,
    questdbPg: o.questdbPg as string,
    retentionDays: o.retentionDays as number,
    spoolDir: o.spoolDir as string,
    duckdbThreads: o.duckdbThreads as number | undefined,
    duckdbMemoryMb: o.duckdbMemoryMb as number | undefined,
    duckdbCheckpointMb: o.duckdbCheckpointMb as number | undefined,
    exploreCacheBytes: o.exploreCacheMb === undefined ? undefined : Math.round((o.exploreCacheMb as number) * 1024 * 1024),
  };
}

export function addFlowOptions(cmd: Command): Command {
  cmd
    .addOption(
      new Option('--interval <seconds>', 'aggregation interval for host and traffic records').env('FLOWLENS_INTERVAL').argParser(positiveInteger).default(60),
    )
    .addOption(
      new Option('--active-timeout <seconds>', 'export long flows at least this often').env('FLOWLENS_ACTIVE_TIMEOUT').argParser(positiveInteger).default(60),
    )
    .addOption(
      new Option('--tcp-timeout <seconds>', 'idle timeout of established TCP flows')
        .env('FLOWLENS_TCP_TIMEOUT')
        .argParser(positiveNumber)
        .default(DEFAULT_IDLE.tcp),
    )
    .addOption(
      new Option('--tcp-closed-timeout <seconds>', 'idle timeout of TCP flows closed by FIN or RST')
        .env('FLOWLENS_TCP_CLOSED_TIMEOUT')
        .argParser(positiveNumber)
        .default(DEFAULT_IDLE.tcpClosed),
    )
    .addOption(
      new Option('--tcp-attempted-timeout <seconds>', 'idle timeout of TCP flows whose handshake never completed')
        .env('FLOWLENS_TCP_ATTEMPTED_TIMEOUT')
        .argParser(positiveNumber)
        .default(DEFAULT_IDLE.tcpAttempted),
    )
    .addOption(
      new Option('--udp-timeout <seconds>', 'idle timeout of UDP flows').env('FLOWLENS_UDP_TIMEOUT').argParser(positiveNumber).default(DEFAULT_IDLE.udp),
    )
    .addOption(
      new Option('--icmp-timeout <seconds>', 'idle timeout of ICMP flows').env('FLOWLENS_ICMP_TIMEOUT').argParser(positiveNumber).default(DEFAULT_IDLE.icmp),
    )
    .addOption(
      new Option('--other-timeout <seconds>', 'idle timeout of other protocols')
        .env('FLOWLENS_OTHER_TIMEOUT')
        .argParser(positiveNumber)
        .default(DEFAULT_IDLE.other),
    )
    .addOption(new Option('--node <name>', 'name of this worker in records').env('FLOWLENS_NODE').default(''))
    .addOption(
      new Option('--max-flows <n>', `live flows kept; past it the oldest idle ones are evicted (default ${defaultMaxFlows()}, from this machine's memory)`)
        .env('FLOWLENS_MAX_FLOWS')
        .argParser(positiveInteger),
    )
    .addOption(
      new Option('--max-hosts <n>', 'hosts kept; past it hosts with no live flow are freed early (default: twice --max-flows)')
        .env('FLOWLENS_MAX_HOSTS')
        .argParser(positiveInteger),
    )
    .addOption(
      new Option('--detect-config <file>', 'anomaly detection thresholds: JSON, a partial config (see src/detect/config.ts)')
        .env('FLOWLENS_DETECT_CONFIG')
        .argParser(detectConfigFile),
    );
  cmd
    .addOption(
      new Option(
        '--geo-db <file>',
        'country or city database in MaxMind format (GeoLite2, DB-IP...); default: the one installed with flowlens; reloaded when it changes',
      )
        .env('FLOWLENS_GEO_DB')
        .argParser(mmdbFile),
    )
    .addOption(
      new Option('--asn-db <file>', 'AS number and organisation database in MaxMind format (GeoLite2-ASN, DB-IP ASN); reloaded when it changes')
        .env('FLOWLENS_ASN_DB')
        .argParser(mmdbFile),
    )
    .addOption(
      new Option('--networks <file>', 'named networks: a JSON array of {"prefix", "name", "role", "tags"}; the longest prefix wins')
        .env('FLOWLENS_NETWORKS')
        .argParser(networksFile),
    );
  addNegatableOption(cmd, '--no-geo', 'no country and AS lookups (special ranges and named networks still apply)', 'FLOWLENS_GEO');
  addNegatableOption(cmd, '--no-detect', 'no anomaly detection', 'FLOWLENS_DETECT');
  addNegatableOption(
    cmd,
    '--no-classify',
    "no learned classifier (predictedCategory, predictedApp): its guess from the first packets' sizes and timing where DPI names no application",
    'FLOWLENS_CLASSIFY',
  );
  return addNegatableOption(
    cmd,
    '--no-dpi',
    'no application protocol identification (app, server names; P2P peer discovery may then look like a host scan)',
    'FLOWLENS_DPI',
  );
}

/**
 * The flow settings as the Aggregator takes them: one mapping for every path that turns packets
 * into flows (import, live capture, and captures uploaded to the API server).
 */
export function aggregatorSettings(
  f: FlowOptions,
): Pick<AggregatorOptions, 'intervalSec' | 'activeTimeoutSec' | 'idle' | 'node' | 'detect' | 'dpi' | 'classify' | 'maxFlows' | 'maxHosts' | 'enrich'> {
  return {
    intervalSec: f.interval,
    activeTimeoutSec: f.activeTimeout,
    idle: f.idle,
    node: f.node,
    detect: f.detect,
    dpi: f.dpi,
    classify: f.classify,
    maxFlows: f.maxFlows,
    maxHosts: f.maxHosts,
    enrich: f.enrich ?? null,
  };
}

/** Collects the flow settings from parsed flags. */
export function flowOptionsFrom(o: Record<string, unknown>): FlowOptions {
  return {
    interval: o.interval as number,
    activeTimeout: o.activeTimeout as number,
    idle: {
      tcp: o.tcpTimeout as number,
      tcpClosed: o.tcpClosedTimeout as number,
      tcpAttempted: o.tcpAttemptedTimeout as number,
      udp: o.udpTimeout as number,
      icmp: o.icmpTimeout as number,
      other: o.otherTimeout as number,
    },
    node: o.node as string,
    detect: o.detect === false ? false : ((o.detectConfig as DetectConfigInput | undefined) ?? {}),
    dpi: o.dpi !== false,
    classify: o.classify !== false,
    maxFlows: o.maxFlows as number | undefined,
    maxHosts: o.maxHosts as number | undefined,
    enrich: {
      geo: o.geo !== false,
      countryDb: o.geoDb as string | undefined,
      asnDb: o.asnDb as string | undefined,
      networks: o.networks as string | undefined,
    },
  };
}
