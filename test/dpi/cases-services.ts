// Flows of service protocols (SQL Server's TDS, Kafka, XMPP, Zabbix, MQTT mid-session), built byte by byte from
// their specifications, with look-alikes on their ports that DPI must not identify.
import type { DpiCase, DpiMessage } from './cases.js';

const TCP = 6;

function c(fromClient: boolean, payload: Buffer): DpiMessage {
  return { fromClient, payload };
}

function u16be(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function u32be(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function u32le(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
}

// --- TDS ([MS-TDS] 2.2.3.1 packet header, 2.2.6.5 PRELOGIN) ---

/** A TDS packet: type, status, big-endian length (header included), SPID, packet id, window 0. */
function tdsPacket(type: number, status: number, body: Buffer, spid = 0, packetId = 1): Buffer {
  return Buffer.concat([Buffer.from([type, status]), u16be(8 + body.length), u16be(spid), Buffer.from([packetId, 0]), body]);
}

/** A PRELOGIN option table and its data: [token, value] pairs, VERSION first. */
function preloginOptions(options: [number, Buffer][]): Buffer {
  const table = options.length * 5 + 1;
  const parts: Buffer[] = [];
  const data: Buffer[] = [];
  let at = table;
  for (const [token, value] of options) {
    parts.push(Buffer.from([token]), u16be(at), u16be(value.length));
    data.push(value);
    at += value.length;
  }
  parts.push(Buffer.from([0xff]));
  return Buffer.concat([...parts, ...data]);
}

const TDS_VERSION = 0x00;
const TDS_ENCRYPTION = 0x01;
const TDS_INSTOPT = 0x02;
const TDS_THREADID = 0x03;
const TDS_MARS = 0x04;

/** The client's PRELOGIN: version 16.0, encryption off, default instance, thread id, no MARS. */
function tdsPrelogin(): Buffer {
  return tdsPacket(
    0x12,
    0x01,
    preloginOptions([
      [TDS_VERSION, Buffer.from([16, 0, 0x10, 0x00, 0, 0])],
      [TDS_ENCRYPTION, Buffer.from([0x00])],
      [TDS_INSTOPT, Buffer.from('MSSQLServer\0', 'latin1')],
      [TDS_THREADID, u32be(0x1234)],
      [TDS_MARS, Buffer.from([0x00])],
    ]),
  );
}

/** The server's answer: a tabular result carrying its PRELOGIN options. */
function tdsPreloginResponse(): Buffer {
  return tdsPacket(
    0x04,
    0x01,
    preloginOptions([
      [TDS_VERSION, Buffer.from([15, 0, 0x07, 0xd0, 0, 0])],
      [TDS_ENCRYPTION, Buffer.from([0x02])],
      [TDS_INSTOPT, Buffer.from([0x00])],
      [TDS_THREADID, Buffer.alloc(0)],
      [TDS_MARS, Buffer.from([0x00])],
    ]),
    0x0035,
  );
}

/** An SQL batch ("SELECT 1" in UTF-16LE after the ALL_HEADERS block), end of message. */
function tdsSqlBatch(): Buffer {
  const allHeaders = Buffer.concat([u32le(22), u32le(18), Buffer.from([0x02, 0x00]), Buffer.alloc(8), u32le(1)]);
  return tdsPacket(0x01, 0x01, Buffer.concat([allHeaders, Buffer.from('SELECT 1', 'utf16le')]));
}

// --- Kafka (kafka.apache.org/protocol: request header v2, response header v0) ---

function kafkaString(s: string | null): Buffer {
  if (s === null) return u16be(0xffff);
  return Buffer.concat([u16be(s.length), Buffer.from(s, 'latin1')]);
}

function compactString(s: string): Buffer {
  return Buffer.concat([Buffer.from([s.length + 1]), Buffer.from(s, 'latin1')]);
}

function sized(body: Buffer): Buffer {
  return Buffer.concat([u32be(body.length), body]);
}

/** ApiVersions v3 (key 18): header v2 (client id, empty tagged fields), software name and version. */
function kafkaApiVersionsRequest(correlationId: number, clientId: string | null): Buffer {
  return sized(
    Buffer.concat([
      u16be(18),
      u16be(3),
      u32be(correlationId),
      kafkaString(clientId),
      Buffer.from([0]),
      compactString('flowlens-client'),
      compactString('1.0.0'),
      Buffer.from([0]),
    ]),
  );
}

/** Its response: the correlation id, error 0, two api key ranges, throttle time, no tags. */
function kafkaApiVersionsResponse(correlationId: number): Buffer {
  const key = (k: number, min: number, max: number): Buffer => Buffer.concat([u16be(k), u16be(min), u16be(max), Buffer.from([0])]);
  return sized(Buffer.concat([u32be(correlationId), u16be(0), Buffer.from([3]), key(0, 0, 11), key(18, 0, 4), u32be(0), Buffer.from([0])]));
}

// --- XMPP (RFC 6120 4.2 and 4.3) ---

const XML_DECL = "<?xml version='1.0'?>";

function xmppClientOpen(domain: string, ns: string): string {
  return `<stream:stream to='${domain}' xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>`;
}

function xmppServerOpen(domain: string, ns: string): string {
  return `<stream:stream from='${domain}' id='c2s_4f1c9a' version='1.0' xml:lang='en' xmlns='${ns}' xmlns:stream='http://etherx.jabber.org/streams'>`;
}

function text(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

/** The binary framing nDPI also calls Jabber on 5223: type byte, big-endian length, opaque bytes. */
function framed5223(type: number, bodyLength: number): Buffer {
  const body = Buffer.alloc(bodyLength);
  for (let i = 0; i < bodyLength; i++) body[i] = (i * 73 + type) & 0xff;
  return Buffer.concat([Buffer.from([type]), u16be(3 + bodyLength), body]);
}

// --- Zabbix (manual: "Zabbix protocols", header and data length) ---

/** "ZBXD", flags, data length and reserved (little-endian), then the data. */
function zabbixMessage(flags: number, data: Buffer, reserved = 0): Buffer {
  return Buffer.concat([Buffer.from('ZBXD', 'latin1'), Buffer.from([flags]), u32le(data.length), u32le(reserved), data]);
}

const SENDER_DATA = '{"request":"sender data","data":[{"host":"web01","key":"app.latency","value":"12"}]}';

// --- MQTT (OASIS MQTT 3.1.1 §3.3 PUBLISH, §3.4 PUBACK, §3.5 PUBREC) ---

/** A PUBLISH at the given QoS: fixed header (type 3, QoS bits), remaining length, topic, packet id, payload. */
function mqttPublish(qos: number, topic: string, id: number, payload: string): Buffer {
  const body = Buffer.concat([u16be(topic.length), text(topic), u16be(id), text(payload)]);
  return Buffer.concat([Buffer.from([0x30 | (qos << 1), body.length]), body]);
}

/** PUBACK (0x40) or PUBREC (0x50) for a packet id. */
function mqttAck(type: number, id: number): Buffer {
  return Buffer.concat([Buffer.from([type, 2]), u16be(id)]);
}

export const SERVICE_CASES: DpiCase[] = [
  // TDS
  {
    name: 'TDS PRELOGIN and the server answer',
    proto: TCP,
    clientPort: 50110,
    serverPort: 1433,
    messages: [c(true, tdsPrelogin()), c(false, tdsPreloginResponse())],
    app: 'MsSQL-TDS',
  },
  {
    name: 'TDS SQL batch of a capture that starts mid-session',
    proto: TCP,
    clientPort: 50111,
    serverPort: 1433,
    messages: [c(true, tdsSqlBatch())],
    app: 'MsSQL-TDS',
  },
  {
    name: 'TDS PRELOGIN and answer on a non-standard port',
    proto: TCP,
    clientPort: 50112,
    serverPort: 14330,
    messages: [c(true, tdsPrelogin()), c(false, tdsPreloginResponse())],
    app: 'MsSQL-TDS',
  },
  // Kafka
  {
    name: 'Kafka ApiVersions request and response',
    proto: TCP,
    clientPort: 50120,
    serverPort: 9092,
    messages: [c(true, kafkaApiVersionsRequest(1, 'producer-1')), c(false, kafkaApiVersionsResponse(1))],
    app: 'Kafka',
  },
  {
    name: 'Kafka ApiVersions with a null client id on a non-standard port, the response echoing it',
    proto: TCP,
    clientPort: 50121,
    serverPort: 19092,
    messages: [c(true, kafkaApiVersionsRequest(7, null)), c(false, kafkaApiVersionsResponse(7))],
    app: 'Kafka',
  },
  // XMPP
  {
    name: 'XMPP client stream: declaration and stream tag, then the server stream',
    proto: TCP,
    clientPort: 50130,
    serverPort: 5222,
    messages: [
      c(true, text(XML_DECL + xmppClientOpen('example.org', 'jabber:client'))),
      c(false, text(XML_DECL + xmppServerOpen('example.org', 'jabber:client'))),
    ],
    app: 'Jabber',
  },
  {
    name: 'XMPP client stream with the declaration in a packet of its own',
    proto: TCP,
    clientPort: 50131,
    serverPort: 5222,
    messages: [
      c(true, text(XML_DECL)),
      c(true, text(xmppClientOpen('chat.example.net', 'jabber:client'))),
      c(false, text(XML_DECL + xmppServerOpen('chat.example.net', 'jabber:client'))),
    ],
    app: 'Jabber',
  },
  {
    name: 'XMPP server-to-server stream',
    proto: TCP,
    clientPort: 50132,
    serverPort: 5269,
    messages: [
      c(true, text(XML_DECL + xmppClientOpen('example.com', 'jabber:server'))),
      c(false, text(XML_DECL + xmppServerOpen('example.com', 'jabber:server'))),
    ],
    app: 'Jabber',
  },
  {
    name: 'XMPP stanza of a capture that starts mid-stream',
    proto: TCP,
    clientPort: 50133,
    serverPort: 5222,
    messages: [c(true, text("<iq type='get' id='p1' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>"))],
    app: 'Jabber',
  },
  {
    name: 'binary framing on 5223 (0x25 opener, 0x26 answer), which nDPI calls Jabber',
    proto: TCP,
    clientPort: 50134,
    serverPort: 5223,
    messages: [c(true, framed5223(0x25, 66)), c(false, framed5223(0x26, 13))],
    app: 'Jabber',
  },
  // Zabbix
  {
    name: 'Zabbix sender data to the trapper',
    proto: TCP,
    clientPort: 50140,
    serverPort: 10051,
    messages: [
      c(true, zabbixMessage(0x01, text(SENDER_DATA))),
      c(false, zabbixMessage(0x01, text('{"response":"success","info":"processed: 1; failed: 0; total: 1"}'))),
    ],
    app: 'Zabbix',
  },
  {
    name: 'Zabbix passive check: the server asks the agent',
    proto: TCP,
    clientPort: 50141,
    serverPort: 10050,
    messages: [c(true, zabbixMessage(0x01, text('agent.ping'))), c(false, zabbixMessage(0x01, text('1')))],
    app: 'Zabbix',
  },
  {
    name: 'Zabbix compressed message on a non-standard port',
    proto: TCP,
    clientPort: 50142,
    serverPort: 31051,
    messages: [c(true, zabbixMessage(0x03, Buffer.from([0x78, 0x9c, 0xab, 0x56, 0x2a, 0x4a, 0x2d, 0x2c, 0x05, 0x00]), 84))],
    app: 'Zabbix',
  },

  // Look-alikes, which DPI must not identify.
  {
    name: 'not TDS: a PRELOGIN header whose length is not the segment, window set',
    proto: TCP,
    clientPort: 50150,
    serverPort: 1433,
    messages: [c(true, Buffer.concat([Buffer.from([0x12, 0x01]), u16be(0x0100), u16be(0), Buffer.from([0x01, 0x05]), Buffer.alloc(39, 0x41)]))],
    app: '',
  },
  {
    name: 'not TDS: an RPC header without end of message, shorter than any full packet',
    proto: TCP,
    clientPort: 50151,
    serverPort: 1433,
    messages: [c(true, tdsPacket(0x03, 0x00, Buffer.from('sp_who ok', 'utf16le')))],
    app: '',
  },
  {
    name: 'not Kafka: size and small integers, but api_version 259 and a client id past the request',
    proto: TCP,
    clientPort: 50160,
    serverPort: 9092,
    messages: [
      c(true, sized(Buffer.concat([u16be(18), u16be(0x0103), u32be(1), u16be(0x4000), Buffer.from('abcd', 'latin1')]))),
      c(false, sized(Buffer.concat([u32be(1), u16be(0)]))),
    ],
    app: '',
  },
  {
    name: 'not Kafka: SMPP bind_transmitter (length, command id, zero status) on 9092',
    proto: TCP,
    clientPort: 50161,
    serverPort: 9092,
    messages: [
      c(
        true,
        sized(Buffer.concat([u32be(0x00000002), u32be(0), u32be(1), Buffer.from('abhik\0password\0SMPP\0', 'latin1'), Buffer.from([0x34, 0x00, 0x00, 0x00])])),
      ),
    ],
    app: '',
  },
  {
    name: 'not Kafka: a well-formed request off the port whose answer echoes another correlation id',
    proto: TCP,
    clientPort: 50162,
    serverPort: 19092,
    messages: [c(true, kafkaApiVersionsRequest(5, 'producer-1')), c(false, kafkaApiVersionsResponse(6))],
    app: '',
  },
  {
    name: 'not XMPP: an XML stream tag without an XMPP namespace on 5222',
    proto: TCP,
    clientPort: 50170,
    serverPort: 5222,
    messages: [c(true, text(`${XML_DECL}<stream:stream to='example.org' xmlns='urn:example:feed' version='1.0'>`)), c(false, text(`${XML_DECL}<feed/>`))],
    app: '',
  },
  {
    name: 'not XMPP: an XML document on 5222',
    proto: TCP,
    clientPort: 50171,
    serverPort: 5222,
    messages: [c(true, text(`${XML_DECL}<methodCall><methodName>jabber.ping</methodName></methodCall>`))],
    app: '',
  },
  {
    name: 'not Zabbix: "ZBXD" with flags lacking the protocol bit',
    proto: TCP,
    clientPort: 50180,
    serverPort: 10051,
    messages: [c(true, zabbixMessage(0x02, text(SENDER_DATA)))],
    app: '',
  },
  {
    name: 'not Zabbix: "ZBXD" whose data length falls short of the segment',
    proto: TCP,
    clientPort: 50181,
    serverPort: 10051,
    messages: [c(true, Buffer.concat([Buffer.from('ZBXD', 'latin1'), Buffer.from([0x01]), u32le(4), u32le(0), text('{"request":"active checks"}')]))],
    app: '',
  },
  // MQTT picked up mid-session (the CONNECT is not in the capture), on a port of its own.
  {
    name: 'MQTT mid-session: a PUBLISH at QoS 1 from the broker, the PUBACK from the subscriber',
    proto: TCP,
    clientPort: 17501,
    serverPort: 53524,
    messages: [c(true, mqttPublish(1, 'Bus17Cmd', 2, '{"messageType":"UPDATE"}')), c(false, mqttAck(0x40, 2))],
    app: 'MQTT',
  },
  {
    name: 'MQTT mid-session: a PUBLISH at QoS 2 answered by PUBREC',
    proto: TCP,
    clientPort: 50190,
    serverPort: 18830,
    messages: [c(false, mqttPublish(2, 'sensors/t1', 0x1234, '21.5')), c(true, mqttAck(0x50, 0x1234))],
    app: 'MQTT',
  },
  {
    name: 'MQTT mid-session: a PINGREQ answered by PINGRESP',
    proto: TCP,
    clientPort: 53522,
    serverPort: 17501,
    messages: [c(true, Buffer.from([0xc0, 0])), c(false, Buffer.from([0xd0, 0]))],
    app: 'MQTT',
  },
  {
    name: 'not MQTT: a PUBLISH-like segment answered with another packet id',
    proto: TCP,
    clientPort: 50191,
    serverPort: 18831,
    messages: [c(true, mqttPublish(1, 'a/b', 7, 'x')), c(false, mqttAck(0x40, 8))],
    app: '',
  },
  {
    name: 'not MQTT: a PUBLISH-like segment acknowledged by its own sender',
    proto: TCP,
    clientPort: 50192,
    serverPort: 18832,
    messages: [c(true, mqttPublish(1, 'a/b', 7, 'x')), c(true, mqttAck(0x40, 7))],
    app: '',
  },
];
