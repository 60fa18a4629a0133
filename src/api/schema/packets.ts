// Where the packets of a flow or an anomaly can be downloaded (GET /pcap, src/api/pcap.ts, with the
// same bearer token as GraphQL), or why they cannot: the packet index never held them, or their
// capture files were evicted or changed since. Evicted packets are said to be so, not served empty.
import { checkSources, PacketsUnavailable } from '../../packets/extract.js';
import type { AnomalyRecord, FlowSummary } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { anomalyPcapUrl, flowPcapUrl } from '../pcap.js';
import { AnomalyRef } from './anomalies.js';
import { builder } from './builder.js';
import { FlowRef } from './flows.js';

interface Availability {
  url: string | null;
  reason: string | null;
}

const NO_INDEX = 'this server holds no packets (started without a packet index)';
const NOT_INDEXED = 'no packets are held for this flow (imported without the packet index, or not kept by the capture)';

// Both fields of one object share one look-up.
const flowChecks = new WeakMap<FlowSummary, Promise<Availability>>();
const anomalyChecks = new WeakMap<AnomalyRecord, Promise<Availability>>();

async function unavailable(check: Promise<void>): Promise<string | null> {
  try {
    await check;
    return null;
  } catch (err) {
    if (err instanceof PacketsUnavailable) return err.message;
    throw err;
  }
}

function flowAvailability(f: FlowSummary, ctx: ApiContext): Promise<Availability> {
  let p = flowChecks.get(f);
  if (!p) {
    p = (async () => {
      if (!ctx.packets) return { url: null, reason: NO_INDEX };
      const refs = await ctx.packets.lookup(f.flowId);
      if (refs.length === 0) return { url: null, reason: NOT_INDEXED };
      const reason = await unavailable(checkSources(refs));
      return reason ? { url: null, reason } : { url: flowPcapUrl(f.flowId), reason: null };
    })();
    flowChecks.set(f, p);
  }
  return p;
}

/**
 * An anomaly's packets are held when a run of the index covers its time (of its node) and that
 * run's files are still as indexed; its flows are chosen when it is downloaded.
 */
function anomalyAvailability(a: AnomalyRecord, ctx: ApiContext): Promise<Availability> {
  let p = anomalyChecks.get(a);
  if (!p) {
    p = (async () => {
      if (!ctx.packets) return { url: null, reason: NO_INDEX };
      const runs = (await ctx.packets.runs()).filter(
        (r) => r.meta.firstTs <= a.lastSeen && r.meta.lastTs >= a.startedAt && (!a.node || r.meta.node === a.node),
      );
      if (runs.length === 0) return { url: null, reason: 'no packets are held for the time of this anomaly' };
      const refs = runs.flatMap((r) => r.meta.files.map((file) => ({ ts: 0, file, offset: 0, length: 0 })));
      const reason = await unavailable(checkSources(refs));
      return reason ? { url: null, reason } : { url: anomalyPcapUrl(a.anomalyId), reason: null };
    })();
    anomalyChecks.set(a, p);
  }
  return p;
}

builder.objectFields(FlowRef, (t) => ({
  pcapUrl: t.string({
    nullable: true,
    description:
      "Path of this flow's packets as a capture file (GET it with the same bearer token as GraphQL); null when they are not held (see packetsUnavailable).",
    resolve: async (f, _args, ctx) => (await flowAvailability(f, ctx)).url,
  }),
  packetsUnavailable: t.string({
    nullable: true,
    description: 'Why pcapUrl is null: the packets were never held, or their files were evicted or changed. Null when they are held.',
    resolve: async (f, _args, ctx) => (await flowAvailability(f, ctx)).reason,
  }),
}));

builder.objectFields(AnomalyRef, (t) => ({
  pcapUrl: t.string({
    nullable: true,
    description: "Path of the packets of the anomaly's flows (its source with its target, while it lasted) as a capture file; null when they are not held.",
    resolve: async (a, _args, ctx) => (await anomalyAvailability(a, ctx)).url,
  }),
  packetsUnavailable: t.string({
    nullable: true,
    description: 'Why pcapUrl is null. Null when the packets are held.',
    resolve: async (a, _args, ctx) => (await anomalyAvailability(a, ctx)).reason,
  }),
}));
