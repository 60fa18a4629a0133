// What a fleet's API server accepts from the bus. Anyone allowed to publish under a node's subject
// can send anything there, so every message must parse as the record its topic claims (the
// FlowEvent, TrafficEvent, AnomalyEvent of ./types.ts, or a node's status heartbeat) and carry the
// node of its subject. Anything else is dropped and counted by reason, before a subscriber sees it.
// The records' fields are checked from their definitions (src/records): each column by its type,
// its `values` and its `ip` flag, so that a field added to a record is checked without editing this.
import { isIP } from 'node:net';
import { ANOMALY, EMPTY_VALUE, FLOW, TRAFFIC, type ColumnInfo } from '../records/index.js';
import type { AnomalyEvent, FlowEvent, Topic, TrafficEvent } from './types.js';
import type { CaptureInterfaceStatus } from '../records/status.js';

/** Why an event was dropped. */
export type InvalidReason = 'not-json' | 'invalid-record' | 'node-mismatch';

export interface NodeStatusEvent {
  node: string;
  /** Sent at (µs). */
  ts: number;
  interfaces: CaptureInterfaceStatus[];
}

export type BusTopic = Topic | 'status';

export interface BusEventOf {
  flow: FlowEvent;
  traffic: TrafficEvent;
  anomaly: AnomalyEvent;
  status: NodeStatusEvent;
}

export type Validated<T extends BusTopic> = { ok: true; event: BusEventOf[T] } | { ok: false; reason: InvalidReason; detail: string };

/** A node name as one NATS subject token ('.', '*', '>' and whitespace are not allowed there). */
export function subjectToken(node: string): string {
  const t = node.replace(/[^A-Za-z0-9_-]/g, '_');
  return t === '' ? '_' : t;
}

class Invalid extends Error {}

type Obj = Record<string, unknown>;

function object(v: unknown, path: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(`${path}: not an object`);
  return v as Obj;
}

function str(o: Obj, k: string, path: string): string {
  if (typeof o[k] !== 'string') throw new Invalid(`${path}.${k}: not a string`);
  return o[k] as string;
}

function oneOf(o: Obj, k: string, path: string, allowed: readonly string[]): void {
  if (!allowed.includes(str(o, k, path))) throw new Invalid(`${path}.${k}: not one of ${allowed.join(', ')}`);
}

/** A finite number, >= 0 and <= max when given (integers only with int). */
function num(o: Obj, k: string, path: string, { int = false, max = Number.MAX_SAFE_INTEGER }: { int?: boolean; max?: number } = {}): void {
  const v = o[k];
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Invalid(`${path}.${k}: not a number`);
  if (v < 0 || v > max || (int && !Number.isInteger(v))) throw new Invalid(`${path}.${k}: ${v} out of range`);
}

function ip(o: Obj, k: string, path: string): void {
  if (isIP(str(o, k, path)) === 0) throw new Invalid(`${path}.${k}: not an IP address`);
}

/** One field of a record, by its column's type, `values` and `ip` flag. */
function field(o: Obj, c: ColumnInfo, path: string): void {
  const k = c.field;
  // A column added since the first release is missing from the events of nodes of an earlier
  // version (a fleet is upgraded node by node): it takes its empty value, as old rows do in the
  // tables (ddl.ts), rather than the event being dropped.
  if (c.added && o[k] === undefined) {
    o[k] = EMPTY_VALUE[c.type];
    return;
  }
  switch (c.type) {
    case 'str':
      if (c.ip) ip(o, k, path);
      else if (c.values) oneOf(o, k, path, c.values as readonly string[]);
      else str(o, k, path);
      return;
    case 'time':
    case 'counter':
      return num(o, k, path, { int: true });
    case 'u8':
      return num(o, k, path, { int: true, max: 255 });
    case 'u16':
      return num(o, k, path, { int: true, max: 65535 });
    case 'bool':
      if (typeof o[k] !== 'boolean') throw new Invalid(`${path}.${k}: not a boolean`);
      return;
    default:
      throw new Error(`validate: no check for column type ${String(c.type satisfies never)}`);
  }
}

function fields(o: Obj, columns: readonly ColumnInfo[], path: string): void {
  for (const c of columns) field(o, c, path);
}

const LIFECYCLE = ['start', 'update', 'end'] as const;
/** A flow event carries the flow's summary: the columns with a combine rule. */
const FLOW_EVENT_COLUMNS = FLOW.summary;
/** A traffic point: the interval's time and counters (its node is the event's; the source is not sent). */
const TRAFFIC_POINT_COLUMNS = TRAFFIC.list.filter((c) => c.type === 'time' || c.type === 'counter');

function flow(e: Obj): string {
  oneOf(e, 'type', 'event', LIFECYCLE);
  const f = object(e.flow, 'flow');
  fields(f, FLOW_EVENT_COLUMNS, 'flow');
  return str(f, 'node', 'flow');
}

function traffic(e: Obj): string {
  num(e, 'step', 'event');
  if ((e.step as number) === 0) throw new Invalid('event.step: 0');
  const p = object(e.point, 'point');
  fields(p, TRAFFIC_POINT_COLUMNS, 'point');
  return str(e, 'node', 'event');
}

function anomaly(e: Obj): string {
  oneOf(e, 'type', 'event', LIFECYCLE);
  const a = object(e.anomaly, 'anomaly');
  fields(a, ANOMALY.list, 'anomaly');
  return str(a, 'node', 'anomaly');
}

function status(e: Obj, token: string): string {
  num(e, 'ts', 'event');
  if (!Array.isArray(e.interfaces)) throw new Invalid('event.interfaces: not an array');
  e.interfaces.forEach((v, n) => {
    const i = object(v, `interfaces[${n}]`);
    str(i, 'name', `interfaces[${n}]`);
    num(i, 'packets', `interfaces[${n}]`);
    num(i, 'drops', `interfaces[${n}]`);
    // A node reports its own interfaces only.
    if (subjectToken(str(i, 'node', `interfaces[${n}]`)) !== token) throw new NodeMismatch(`interfaces[${n}].node is not ${token}`);
  });
  return str(e, 'node', 'event');
}

class NodeMismatch extends Error {}

const CHECKS: Record<BusTopic, (e: Obj, token: string) => string> = { flow, traffic, anomaly, status };

/**
 * Checks a message received on `flowlens.<token>.<topic>`: the JSON text must be the record the
 * topic names, with every required field of the right type, and its node's subject token must be
 * `token`. Extra fields are left as they are (a newer node may send more); fields added to the
 * record since the first release may be missing (an older node) and get their empty values.
 */
export function validateBusEvent<T extends BusTopic>(topic: T, token: string, text: string): Validated<T> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not-json', detail: 'not JSON' };
  }
  try {
    const e = object(value, 'event');
    const node = CHECKS[topic](e, token);
    if (subjectToken(node) !== token) return { ok: false, reason: 'node-mismatch', detail: `node '${node}' published under ${token}` };
    return { ok: true, event: value as BusEventOf[T] };
  } catch (err) {
    if (err instanceof NodeMismatch) return { ok: false, reason: 'node-mismatch', detail: err.message };
    if (err instanceof Invalid) return { ok: false, reason: 'invalid-record', detail: err.message };
    throw err;
  }
}
