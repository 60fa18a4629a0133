// Alert rules over flow records, one rule a line:
//
//   NAME SEVERITY [FIELD=VALUE[,VALUE...]]... [FIELD!=VALUE...] [when METRIC >= N per source|target in DURATION]
//
//   telnet        high      transport=tcp serverPort=23
//   smb-spread    critical  serverPort=445 when peers >= 20 per source in 60s
//   big-upload    medium    serverIp!=10.0.0.0/8 when bytes >= 100000000 per source in 5m
//   set quiet=60s update=10s
//
// A flow matches when every condition holds; a condition holds when any of its values does (!=:
// when none does). Fields: clientIp, serverIp, ip (either end), clientPort, serverPort, port
// (either), transport, app, serverName (* matches any characters), ja4, node, iface, risk (one of
// the flow's risks, src/dpi/risks.ts, with _ for a space: risk=Self-signed_Cert,TLS_Cert_*). Addresses
// take CIDR prefixes, ports take ranges (1024-65535), names compare without case. Without `when`
// every matching flow raises (or keeps up) an anomaly per client, server and port; with it, the
// flows, bytes, packets or distinct peers of the matching flows per source (client address) or
// target (server address) must reach N within the window. `set` tunes the anomalies' lifecycle:
// ended after `quiet` without a matching flow, updated at most every `update`.
import { SEVERITIES, type Severity } from '../records/anomaly.js';
import { PrefixIndex, parsePrefix } from './ip-prefix.js';
import { ListFileError } from './watchlist.js';

export const RULE_FIELDS = [
  'clientIp',
  'serverIp',
  'ip',
  'clientPort',
  'serverPort',
  'port',
  'transport',
  'app',
  'serverName',
  'ja4',
  'node',
  'iface',
  'risk',
] as const;
export type RuleField = (typeof RULE_FIELDS)[number];
export const RULE_METRICS = ['flows', 'bytes', 'packets', 'peers'] as const;
export type RuleMetric = (typeof RULE_METRICS)[number];

/** What a rule reads of a flow. */
export interface RuleFlow {
  clientIp: string;
  serverIp: string;
  clientPort: number;
  serverPort: number;
  transport: string;
  app: string;
  serverName: string;
  ja4: string;
  node: string;
  iface: string;
  /** The flow's risks, comma-separated ('' when none). */
  risks: string;
}

type Test = (f: RuleFlow) => boolean;

export interface Threshold {
  metric: RuleMetric;
  value: number;
  per: 'source' | 'target';
  windowUs: number;
}

export interface Rule {
  name: string;
  severity: Severity;
  line: number;
  /** The conditions as written, for the evidence. */
  text: string;
  matches: Test;
  threshold?: Threshold;
}

export interface RuleSet {
  file: string;
  rules: Rule[];
  quietSec: number;
  updateSec: number;
}

export const DEFAULT_RULE_QUIET_SEC = 60;
export const DEFAULT_RULE_UPDATE_SEC = 10;

/** 30, 30s, 5m, 1h, 1d -> seconds; NaN when it is not a duration. */
function seconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(text);
  if (!m) return Number.NaN;
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's'];
}

function globTest(pattern: string): (s: string) => boolean {
  const lower = pattern.toLowerCase();
  if (!lower.includes('*')) return (s) => s.toLowerCase() === lower;
  const re = new RegExp(
    `^${lower
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return (s) => re.test(s.toLowerCase());
}

function portTest(values: string[]): (port: number) => boolean {
  const ranges = values.map((v) => {
    const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(v);
    const lo = m ? Number(m[1]) : -1;
    const hi = m ? Number(m[2] ?? m[1]) : -1;
    if (lo < 0 || hi > 65535 || lo > hi) throw new Error(`'${v}' is not a port or port range (0-65535)`);
    return [lo, hi];
  });
  return (port) => ranges.some(([lo, hi]) => port >= lo && port <= hi);
}

function addressTest(values: string[]): (ip: string) => boolean {
  const index = new PrefixIndex<true>();
  for (const v of values) index.add(parsePrefix(v), true);
  return (ip) => index.lookup(ip) === true;
}

function condition(field: RuleField, values: string[]): Test {
  switch (field) {
    case 'clientIp':
    case 'serverIp': {
      const t = addressTest(values);
      return (f) => t(f[field]);
    }
    case 'ip': {
      const t = addressTest(values);
      return (f) => t(f.clientIp) || t(f.serverIp);
    }
    case 'clientPort':
    case 'serverPort': {
      const t = portTest(values);
      return (f) => t(f[field]);
    }
    case 'port': {
      const t = portTest(values);
      return (f) => t(f.clientPort) || t(f.serverPort);
    }
    case 'risk': {
      // Risk names hold spaces, which separate a rule's words: '_' stands for one.
      const tests = values.map((v) => globTest(v.replaceAll('_', ' ')));
      return (f) => f.risks !== '' && f.risks.split(',').some((r) => tests.some((t) => t(r)));
    }
    default: {
      const tests = values.map(globTest);
      return (f) => tests.some((t) => t(f[field]));
    }
  }
}

function parseThreshold(words: string[]): Threshold {
  // when METRIC >= N per source|target in DURATION
  const [metric, op, n, per, who, inWord, window, ...rest] = words;
  const usage = "expected 'when METRIC >= N per source|target in DURATION'";
  if (rest.length > 0 || op !== '>=' || per !== 'per' || inWord !== 'in') throw new Error(usage);
  if (!RULE_METRICS.includes(metric as RuleMetric)) throw new Error(`unknown metric '${metric}' (one of ${RULE_METRICS.join(', ')})`);
  const value = Number(n);
  if (!Number.isInteger(value) || value < 1) throw new Error(`threshold '${n}' must be a whole number of at least 1`);
  if (who !== 'source' && who !== 'target') throw new Error(`'per ${who}': per source or per target`);
  const sec = seconds(window ?? '');
  if (!(sec > 0)) throw new Error(`window '${window}' is not a duration (30s, 5m, 1h)`);
  return { metric: metric as RuleMetric, value, per: who, windowUs: sec * 1e6 };
}

function parseRule(words: string[], line: number): Rule {
  const [name, severity, ...rest] = words;
  if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw new Error(`rule name '${name}' must be 1 to 64 letters, digits, '_', '.', ':' or '-'`);
  if (!SEVERITIES.includes(severity as Severity)) throw new Error(`severity '${severity ?? ''}' must be one of ${SEVERITIES.join(', ')}`);
  const whenAt = rest.indexOf('when');
  const conditions = whenAt < 0 ? rest : rest.slice(0, whenAt);
  const tests: Test[] = [];
  for (const c of conditions) {
    const m = /^([A-Za-z]+)(!?=)(.+)$/.exec(c);
    if (!m) throw new Error(`'${c}' is not FIELD=VALUE or FIELD!=VALUE`);
    const field = m[1] as RuleField;
    if (!RULE_FIELDS.includes(field)) throw new Error(`unknown field '${m[1]}' (one of ${RULE_FIELDS.join(', ')})`);
    const t = condition(field, m[3].split(','));
    tests.push(m[2] === '!=' ? (f) => !t(f) : t);
  }
  if (tests.length === 0 && whenAt < 0) throw new Error(`rule '${name}' has no condition and no threshold: it would match every flow`);
  return {
    name,
    severity: severity as Severity,
    line,
    text: conditions.join(' '),
    matches: (f) => tests.every((t) => t(f)),
    threshold: whenAt < 0 ? undefined : parseThreshold(rest.slice(whenAt + 1)),
  };
}

/** Parses a rules file's text; throws a ListFileError at the first bad line. */
export function parseRules(file: string, text: string): RuleSet {
  const set: RuleSet = { file, rules: [], quietSec: DEFAULT_RULE_QUIET_SEC, updateSec: DEFAULT_RULE_UPDATE_SEC };
  const names = new Set<string>();
  text.split('\n').forEach((raw, i) => {
    const line = i + 1;
    const hash = raw.indexOf('#');
    const words = (hash >= 0 ? raw.slice(0, hash) : raw).trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return;
    try {
      if (words[0] === 'set') {
        for (const w of words.slice(1)) {
          const m = /^(quiet|update)=(.+)$/.exec(w);
          const sec = m ? seconds(m[2]) : Number.NaN;
          if (!m || !(sec > 0)) throw new Error(`'set ${w}': expected quiet=DURATION or update=DURATION`);
          if (m[1] === 'quiet') set.quietSec = sec;
          else set.updateSec = sec;
        }
        return;
      }
      const rule = parseRule(words, line);
      if (names.has(rule.name)) throw new Error(`rule '${rule.name}' is defined twice`);
      names.add(rule.name);
      set.rules.push(rule);
    } catch (err) {
      throw new ListFileError(file, line, (err as Error).message);
    }
  });
  return set;
}
