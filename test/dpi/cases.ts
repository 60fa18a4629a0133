// Flows for the DPI engine, built byte by byte: each is fed through a DpiEngine with every
// registered dissector (test/dpi-protocols.test.ts), so a case checks that its protocol is found
// and that no other dissector claims it first.

export interface DpiMessage {
  fromClient: boolean;
  payload: Buffer;
}

export interface DpiCase {
  /** What the flow is, for assertion messages. */
  name: string;
  /** 6 (TCP) or 17 (UDP). */
  proto: 6 | 17;
  clientPort: number;
  serverPort: number;
  /** The payloads in order (the engine looks at the first few of each direction). */
  messages: DpiMessage[];
  /** nDPI's name of the master protocol ('' when the flow must NOT be identified by DPI). */
  app: string;
  /** The server name the flow must get, when the protocol carries one. */
  serverName?: string;
}
