/**
 * Fleet bus events that pass the bus's validation (src/bus/validate.ts), one per topic, and the
 * small tools the NATS tests share: a logger whose lines a test reads, a polling wait.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { emptySummary, FLOW } from '../../src/records/index.js';
import type { AnomalyEvent, FlowEvent, TrafficEvent } from '../../src/bus/types.js';
import type { NodeStatusEvent } from '../../src/bus/validate.js';
import { sleep } from './netns.js';

export function flowEvent(node: string, n = 0): FlowEvent {
  return {
    type: 'update',
    flow: {
      ...emptySummary(FLOW),
      flowId: `f${n}`,
      node,
      iface: 'eth0',
      firstSeen: 1,
      lastSeen: 2,
      transport: 'tcp',
      ipProto: 6,
      clientIp: '10.0.0.1',
      clientPort: 40000 + n,
      serverIp: '10.0.0.2',
      serverPort: 80,
      clientPackets: 1,
      clientBytes: 60,
      serverPackets: 1,
      serverBytes: 60,
      clientTcpFlags: 2,
      serverTcpFlags: 18,
      tcpState: 'established',
      app: '',
      serverName: '',
      confidence: '',
      firstPackets: '',
      appInfo: '',
      duration: 0,
      endReason: '',
    },
  };
}

export function trafficEvent(node: string): TrafficEvent {
  return { node, step: 60_000_000, point: { ts: 1, bytes: 100, packets: 2, flows: 1 } };
}

export function anomalyEvent(node: string): AnomalyEvent {
  return {
    type: 'start',
    anomaly: {
      ts: 1,
      anomalyId: 'a1',
      node,
      kind: 'HOST_SCAN',
      severity: 'high',
      source: '10.0.0.9',
      targetIp: '10.0.0.0/24',
      targetPort: 22,
      startedAt: 1,
      lastSeen: 2,
      state: 'active',
      packets: 300,
      bytes: 18000,
      evidence: '{}',
      summary: 'a scan',
      evidenceFlows: '1 00000000000000aa',
    },
  };
}

export function statusEvent(node: string): NodeStatusEvent {
  return { node, ts: 1, interfaces: [{ name: 'eth0', node, packets: 10, drops: 0 }] };
}

/** A pino logger whose lines a test can read. */
export function memoryLogger(): { logger: pino.Logger; lines: () => string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines: () => lines };
}

export async function until(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}
