/**
 * A small closed TCP conversation (10 packets: handshake, 100 bytes up, 400 down, FIN both ways)
 * with the export record it must give, for tests that put bad packets or files around good ones.
 */
import { LINKTYPE, tcpConversation, toFrames, type Endpoint, type Frame, type TimedPacket } from './frames.js';
import type { FlowMeta } from './cli.js';

export interface ClosedConversation {
  meta: FlowMeta;
  packets: TimedPacket[];
  /** Ethernet frames. */
  frames: Frame[];
}

export function closedTcpConversation(client: Endpoint, server: Endpoint, start: bigint): ClosedConversation {
  const packets = tcpConversation({
    client,
    server,
    start,
    data: [
      { from: 'client', bytes: 100 },
      { from: 'server', bytes: 400 },
    ],
    close: 'fin',
  });
  return {
    meta: {
      transport: 'tcp',
      ipProto: 6,
      clientIp: client.ip,
      clientPort: client.port,
      serverIp: server.ip,
      serverPort: server.port,
      tcpState: 'closed',
      clientTcpFlags: 0x1b,
      serverTcpFlags: 0x1b,
    },
    packets,
    frames: toFrames(LINKTYPE.ETHERNET, packets),
  };
}
