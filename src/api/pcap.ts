// GET /pcap?flow=ID | ?anomaly=ID | ?filter=TERMS&from=T&to=T: the same capture `flowlens pcap`
// writes, as a download. The server's router has already applied GraphQL's rules (loopback Host,
// cross-site refusal, bearer token). Answers: 200 with the capture (Content-Disposition names it
// flowlens-<client>-<server>-<time>.pcap); 400 a bad request; 404 no packets held for it (never
// indexed); 410 its packets were held but their files are gone or changed (evicted): retention is
// reported as such, never as an empty capture.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { Logger } from 'pino';
import { checkSources, extractPackets, PacketsUnavailable } from '../packets/extract.js';
import { captureFileName, firstPacketEnds } from '../packets/frames.js';
import type { PacketIndexReader } from '../packets/index-reader.js';
import { flowIdsOf, PacketSelectionError, packetsOfFlows } from '../packets/select.js';
import type { StoreReader } from '../store/types.js';

export const PCAP_PATH = '/pcap';

const URL_NAMES = { flow: 'flow=', anomaly: 'anomaly=', filter: 'filter=', from: 'from=', to: 'to=' };

/** The URL of a flow's capture, as GraphQL's pcapUrl gives it (relative to the server). */
export function flowPcapUrl(flowId: string): string {
  return `${PCAP_PATH}?flow=${encodeURIComponent(flowId)}`;
}

export function anomalyPcapUrl(anomalyId: string): string {
  return `${PCAP_PATH}?anomaly=${encodeURIComponent(anomalyId)}`;
}

function fail(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code } }] }));
}

export async function servePcap(
  req: IncomingMessage,
  res: ServerResponse,
  deps: { store: StoreReader; packets: PacketIndexReader; logger: Logger },
): Promise<void> {
  const params = new URL(req.url ?? '/', 'http://localhost').searchParams;
  const one = (name: string) => params.get(name) ?? undefined;
  try {
    const { flowIds, anomalyFlows } = await flowIdsOf(
      { flow: params.getAll('flow'), anomaly: one('anomaly'), filter: one('filter'), from: one('from'), to: one('to') },
      async () => deps.store,
      URL_NAMES,
    );
    if (flowIds.length === 0) {
      fail(res, 404, 'NOT_HELD', 'no flow matches: nothing to extract');
      return;
    }
    const { refs, missing } = await packetsOfFlows(deps.packets, flowIds);
    if (refs.length === 0) {
      fail(
        res,
        404,
        'NOT_HELD',
        `no packets are held for ${flowIds.length === 1 ? `flow ${flowIds[0]}` : `these ${flowIds.length} flows`}: not indexed (imported without the packet index, or not kept by the capture)`,
      );
      return;
    }
    await checkSources(refs);
    const ends = flowIds.length === 1 ? await firstPacketEnds(refs[0]).catch(() => null) : null;
    let sent = false;
    await extractPackets(
      refs,
      async (chunk) => {
        if (res.destroyed) throw new Error('the client went away');
        if (!res.write(chunk)) await once(res, 'drain');
      },
      (format) => {
        const name = captureFileName(ends, flowIds.length === 1 ? flowIds[0] : `${flowIds.length}-flows`, format);
        res.writeHead(200, {
          'content-type': format === 'pcap' ? 'application/vnd.tcpdump.pcap' : 'application/x-pcapng',
          'content-disposition': `attachment; filename="${name}"`,
          'cache-control': 'no-store',
          'x-content-type-options': 'nosniff',
          // Flows of a request whose packets are not held: the client can tell the capture is partial.
          ...(missing.length > 0 ? { 'x-flowlens-flows-missing': String(missing.length) } : {}),
          // An anomaly's flows: those it names as evidence, or (stored before it named them) a guess.
          ...(anomalyFlows ? { 'x-flowlens-anomaly-flows': `${anomalyFlows.basis}; total=${anomalyFlows.total}` } : {}),
        });
        sent = true;
      },
    );
    res.end();
    if (!sent) throw new Error('no capture was started');
  } catch (err) {
    if (res.headersSent) {
      // Mid-stream: the capture cannot be finished; cut the connection so it is not taken for whole.
      deps.logger.warn({ err }, 'pcap download cut short');
      res.destroy();
      return;
    }
    if (err instanceof PacketSelectionError) fail(res, 400, 'BAD_REQUEST', err.message);
    else if (err instanceof PacketsUnavailable) fail(res, 410, 'EVICTED', err.message);
    else throw err;
  }
}
