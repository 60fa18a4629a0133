// Where the packets of a flow or an anomaly can be downloaded (GET /pcap, src/api/pcap.ts, with the
// same bearer token as GraphQL), or why they cannot: the packet index never held them, or their
// capture files were evicted or changed since. Evicted packets are said to be so, not served empty.
import { checkSources, PacketsUnavailable } from '../../packets/extract.js';
import { packetsOfFlows } from '../../packets/select.js';
import { captureFileName, firstPacketEnds } from '../../packets/frames.js';
import { type ListedPacket, listPackets, MAX_LIST_PACKETS, MAX_PAYLOAD_BYTES } from '../../packets/list.js';
import { parseFlowId } from '../../packets/format.js';
import type { AnomalyRecord, FlowSummary } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { anomalyPcapUrl, flowPcapUrl } from '../pcap.js';
import { AnomalyRef } from './anomalies.js';
import { builder, userError } from './builder.js';
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

const FlowPacketRef = builder.objectRef<ListedPacket>('FlowPacket').implement({
  description: 'One packet of a flow, read back from the packet store (or the imported file) and decoded again.',
  fields: (t) => ({
    ts: t.field({ type: 'DateTime', resolve: (p) => p.ts, description: 'When it was captured.' }),
    src: t.string({ nullable: true, resolve: (p) => p.src, description: 'Source address; null when the frame is not IP.' }),
    srcPort: t.int({ nullable: true, resolve: (p) => p.srcPort, description: 'Null when the packet has no ports (e.g. ICMP, a later fragment).' }),
    dst: t.string({ nullable: true, resolve: (p) => p.dst }),
    dstPort: t.int({ nullable: true, resolve: (p) => p.dstPort }),
    length: t.int({ resolve: (p) => p.length, description: 'Bytes on the wire.' }),
    capturedLength: t.int({ resolve: (p) => p.capturedLength, description: 'Bytes captured (a snap length may cut the packet).' }),
    tcpFlags: t.int({
      nullable: true,
      resolve: (p) => p.tcpFlags,
      description: 'TCP flags (FIN 1, SYN 2, RST 4, PSH 8, ACK 16, URG 32, ECE 64, CWR 128); null when not TCP.',
    }),
    payloadLength: t.int({ resolve: (p) => p.payloadLength, description: 'Captured bytes after the transport header (the whole frame when it is not IP).' }),
    payloadHex: t.string({ resolve: (p) => p.payloadHex, description: 'The first `payloadBytes` of the payload in hex.' }),
  }),
});

interface FlowPackets {
  flowId: string;
  availability: Availability;
  fileName: string | null;
  packets: ListedPacket[];
}

const FlowPacketsRef = builder.objectRef<FlowPackets>('FlowPackets').implement({
  description: "A flow's first packets and where to download them all.",
  fields: (t) => ({
    flowId: t.id({ resolve: (r) => r.flowId }),
    pcapUrl: t.string({ nullable: true, resolve: (r) => r.availability.url, description: 'As Flow.pcapUrl.' }),
    packetsUnavailable: t.string({ nullable: true, resolve: (r) => r.availability.reason, description: 'As Flow.packetsUnavailable.' }),
    fileName: t.string({
      nullable: true,
      resolve: (r) => r.fileName,
      description: 'The name the download carries: flowlens-<client>-<server>-<time>.pcap (or .pcapng); null when the packets are not held.',
    }),
    packets: t.field({ type: [FlowPacketRef], resolve: (r) => r.packets, description: 'The first packets in time order; empty when they are not held.' }),
  }),
});

builder.queryField('flowPackets', (t) =>
  t.field({
    type: FlowPacketsRef,
    description: `The first packets of one flow (its id as Flow.id), from the packet index: at most ${MAX_LIST_PACKETS}, each with at most ${MAX_PAYLOAD_BYTES} bytes of payload.`,
    args: {
      flow: t.arg.id({ required: true }),
      first: t.arg.int({ defaultValue: 50, description: `At most ${MAX_LIST_PACKETS}.` }),
      payloadBytes: t.arg.int({ defaultValue: 256, description: `Bytes of each payload, at most ${MAX_PAYLOAD_BYTES}.` }),
    },
    resolve: async (_root, args, ctx) => {
      const flowId = String(args.flow);
      const first = args.first ?? 50;
      const payloadBytes = args.payloadBytes ?? 256;
      if (!parseFlowId(flowId)) throw userError(`flow must be a flow id (16 hex digits); got ${JSON.stringify(flowId)}`);
      if (!Number.isInteger(first) || first < 0 || first > MAX_LIST_PACKETS) throw userError(`first must be 0 to ${MAX_LIST_PACKETS}; got ${first}`);
      if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > MAX_PAYLOAD_BYTES) {
        throw userError(`payloadBytes must be 0 to ${MAX_PAYLOAD_BYTES}; got ${payloadBytes}`);
      }
      const none = (reason: string): FlowPackets => ({ flowId, availability: { url: null, reason }, fileName: null, packets: [] });
      if (!ctx.packets) return none(NO_INDEX);
      const { refs } = await packetsOfFlows(ctx.packets, [flowId]);
      if (refs.length === 0) return none(NOT_INDEXED);
      const reason = await unavailable(checkSources(refs));
      if (reason) return none(reason);
      const format = refs.every((r) => r.file.format === 'pcap') ? 'pcap' : 'pcapng';
      const ends = await firstPacketEnds(refs[0]).catch(() => null);
      return {
        flowId,
        availability: { url: flowPcapUrl(flowId), reason: null },
        fileName: captureFileName(ends, flowId, format),
        packets: await listPackets(refs, first, payloadBytes),
      };
    },
  }),
);
