// Who is the client of a TCP flow picked up mid-stream when its first packet seen is a bare ACK
// (no SYN, no payload: nothing but the ports to go by). nDPI's rule (ndpi_main.c,
// ndpi_connection_tracking, with direction detection on as ndpiReader runs it): a TCP packet goes
// client to server when its source port is not below its destination port, i.e. the lower port is
// the server's. flowlens applies it where its own evidence (a SYN, a service port on one side
// only, a first payload) is missing. The flow's later payloads are then seen in the right direction:
// an HTTP request after the server's bare ACK is the client's, and named as ndpiReader names it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { importFiles } from '../src/capture/import.js';
import type { FlowRecord } from '../src/store/types.js';
import { ndpiReaderListing } from './dpi/midstream.js';
import { flowCollector } from './dpi/risks-eval.js';
import { byTime, ip, LINKTYPE, tcp, toFrames, ts, type TimedPacket } from './helpers/frames.js';
import { pcap, writeCapture } from './helpers/pcap-writer.js';

const ACK = 0x10;
const PSH = 0x08;

interface Side {
  ip: string;
  port: number;
}

/** A keep-alive HTTP exchange seen from the server's bare ACK of an earlier request on. */
function keepAlive(client: Side, server: Side, t0: number, host: string): TimedPacket[] {
  const seq = { client: 1300, server: 5000 };
  const out: TimedPacket[] = [];
  let t = 0;
  const send = (from: 'client' | 'server', text: string) => {
    const [a, b, other] = from === 'client' ? [client, server, 'server' as const] : [server, client, 'client' as const];
    const data = Buffer.from(text, 'latin1');
    const l4 = tcp({ srcPort: a.port, dstPort: b.port, seq: seq[from], ack: seq[other], flags: data.length > 0 ? ACK | PSH : ACK, payload: data });
    out.push({ ts: ts(t0, t++ * 1000), from, ip: ip({ src: a.ip, dst: b.ip, l4 }) });
    seq[from] += data.length;
  };
  send('server', '');
  send('client', `GET /next HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n`);
  send('server', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  send('client', '');
  return out;
}

const has = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

describe('mid-stream TCP whose first packet is a bare ACK', () => {
  it('the lower port is the server, as nDPI has it, and the request after the ACK is the client’s', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flowlens-direction-'));
    try {
      // Unregistered ports on both sides: the server's ACK first (5000 < 41000), and on another
      // flow the client's ACK first.
      const packets = [
        ...keepAlive({ ip: '10.9.0.1', port: 41000 }, { ip: '10.9.0.2', port: 5000 }, 1_700_000_000, 'keep.example'),
        ...keepAlive({ ip: '10.9.0.3', port: 41001 }, { ip: '10.9.0.4', port: 5000 }, 1_700_000_001, 'other.example').map((p, i, all) =>
          i === 0 ? { ...all[3], ts: p.ts } : i === 3 ? { ...all[0], ts: p.ts } : p,
        ),
      ];
      const file = writeCapture(join(dir, 'ack-first.pcap'), pcap({ linktype: LINKTYPE.ETHERNET }, toFrames(LINKTYPE.ETHERNET, byTime(packets))));
      const records: FlowRecord[] = [];
      await importFiles([file], { store: flowCollector(records), node: 't', iface: 't', detect: false });
      const flow = (clientIp: string) => records.filter((r) => r.clientIp === clientIp || r.serverIp === clientIp).at(-1);
      const first = flow('10.9.0.1');
      assert.deepEqual(
        [first?.clientIp, first?.clientPort, first?.serverPort, first?.app, first?.serverName],
        ['10.9.0.1', 41000, 5000, 'HTTP', 'keep.example'],
      );
      const second = flow('10.9.0.3');
      assert.deepEqual([second?.clientIp, second?.serverPort, second?.app, second?.serverName], ['10.9.0.3', 5000, 'HTTP', 'other.example']);
      if (has('ndpiReader')) {
        const ndpi = await ndpiReaderListing(file, 'ack-first.pcap');
        assert.deepEqual(
          ndpi.map((n) => [n.master, n.serverName]).sort(),
          [
            ['HTTP', 'keep.example'],
            ['HTTP', 'other.example'],
          ],
          'ndpiReader names both flows so',
        );
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
