/**
 * The connection-attempt tracker that feeds the scan detectors (src/detect/attempts.ts), driven
 * directly with decoded frames: every attempt gets exactly one outcome (answered, reset, ICMP
 * unreachable or timed out) carrying its own addresses and port, including past the initial size
 * of its tables; a retry of a pending attempt is not a new one; a full tracker fails its oldest
 * attempt; an ICMP time exceeded withdraws an attempt without an outcome; and the timeout of an
 * answered attempt never touches a later attempt that reuses its storage.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodePacket } from '../src/decode/index.js';
import { DecodedPacket } from '../src/decode/packet.js';
import { AttemptTracker } from '../src/detect/attempts.js';
import { F_FIRST_REPLY, F_FROM_CLIENT, F_NEW_FLOW, PacketFacts, addressKey } from '../src/detect/facts.js';
import type { Attempt } from '../src/detect/types.js';
import { TCP_FLAGS, be16, concat, ipv4, ipv4Addr, rawPayload, tcp, u8 } from './helpers/frames.js';

const LINKTYPE_IPV4 = 228;
const T0 = 1_700_000_000_000_000; // µs
const TIMEOUT_SEC = 5;
const SCANNER = '10.0.0.1';
const TARGET = '10.0.0.2';

interface Outcome {
  src: number;
  dst: number;
  port: number;
  ts: number;
  success: boolean;
}

function tracker(maxPending = 1_000_000) {
  const attempts: { dst: number; port: number; ts: number }[] = [];
  const outcomes: Outcome[] = [];
  const t = new AttemptTracker(
    TIMEOUT_SEC,
    maxPending,
    (a: Attempt) => attempts.push({ dst: a.dstKey, port: a.port, ts: a.ts }),
    (a: Attempt, success: boolean) => outcomes.push({ src: a.srcKey, dst: a.dstKey, port: a.port, ts: a.ts, success }),
  );
  const pkt = new DecodedPacket();
  const facts = new PacketFacts();
  const send = (ts: number, frame: Uint8Array, flags: number) => {
    const buf = Buffer.from(frame);
    decodePacket(LINKTYPE_IPV4, buf, 0, buf.length, buf.length, pkt);
    facts.set(pkt, buf, ts, buf.length, flags);
    t.packet(facts);
  };
  return { t, attempts, outcomes, send };
}

const syn = (port: number, srcPort = 40000, src = SCANNER, dst = TARGET) => ipv4({ src, dst, l4: tcp({ srcPort, dstPort: port, flags: TCP_FLAGS.SYN }) });
const reply = (port: number, flags: number, srcPort = 40000) => ipv4({ src: TARGET, dst: SCANNER, l4: tcp({ srcPort: port, dstPort: srcPort, flags }) });

/** An ICMP error from the target quoting the SYN to `port` (type 3 code 3 unreachable, or 11 time exceeded). */
function icmpError(type: number, port: number): Uint8Array {
  const quoted = syn(port).subarray(0, 28); // IP header and the first 8 bytes of TCP
  return ipv4({ src: TARGET, dst: SCANNER, l4: rawPayload(1, concat(u8(type, type === 3 ? 3 : 0), be16(0), u8(0, 0, 0, 0), quoted)) });
}

const key = (ip: string) => addressKey(4, new Uint32Array([ipv4Addr(ip).reduce((acc, b) => acc * 256 + b, 0)]));

test('20,000 attempts: each gets one outcome, with its own port, answered, reset or timed out', () => {
  const { t, attempts, outcomes, send } = tracker();
  const n = 20_000;
  for (let i = 0; i < n; i++) send(T0 + i * 10, syn(1 + i), F_NEW_FLOW | F_FROM_CLIENT);
  assert.equal(attempts.length, n);
  assert.equal(t.size, n);
  // Ports 1..5000 answer with SYN-ACK, 5001..10000 reset, the rest stay silent.
  for (let i = 0; i < 10_000; i++) {
    send(T0 + 300_000 + i, reply(1 + i, i < 5000 ? TCP_FLAGS.SYN | TCP_FLAGS.ACK : TCP_FLAGS.RST | TCP_FLAGS.ACK), F_FIRST_REPLY);
  }
  assert.equal(outcomes.length, 10_000);
  assert.equal(t.size, n - 10_000);
  t.tick(T0 + (TIMEOUT_SEC - 1) * 1e6); // too early for any to time out
  assert.equal(outcomes.length, 10_000);
  t.tick(T0 + TIMEOUT_SEC * 1e6 + n * 10);
  assert.equal(outcomes.length, n);
  assert.equal(t.size, 0);
  const byPort = new Map(outcomes.map((o) => [o.port, o]));
  assert.equal(byPort.size, n, 'one outcome per attempt');
  for (let port = 1; port <= n; port++) {
    const o = byPort.get(port)!;
    assert.equal(o.success, port <= 5000, `port ${port}`);
    assert.equal(o.ts, T0 + (port - 1) * 10, `port ${port}: the attempt's own time`);
    assert.equal(o.src, key(SCANNER));
    assert.equal(o.dst, key(TARGET));
  }
});

test('a retry of a pending attempt from another source port is not a new attempt', () => {
  const { t, attempts, outcomes, send } = tracker();
  send(T0, syn(22, 40000), F_NEW_FLOW | F_FROM_CLIENT);
  send(T0 + 1e6, syn(22, 40001), F_NEW_FLOW | F_FROM_CLIENT);
  assert.equal(attempts.length, 1);
  assert.equal(t.size, 1);
  send(T0 + 1.5e6, reply(22, TCP_FLAGS.RST | TCP_FLAGS.ACK, 40001), F_FIRST_REPLY);
  assert.deepEqual(
    outcomes.map((o) => [o.port, o.success]),
    [[22, false]],
  );
});

test('a full tracker gives up its oldest pending attempt as failed', () => {
  const { t, outcomes, send } = tracker(100);
  for (let i = 0; i < 100; i++) send(T0 + i, syn(1000 + i), F_NEW_FLOW | F_FROM_CLIENT);
  send(T0 + 50, reply(1000, TCP_FLAGS.SYN | TCP_FLAGS.ACK), F_FIRST_REPLY); // the oldest is answered
  send(T0 + 100, syn(2000), F_NEW_FLOW | F_FROM_CLIENT); // 99 pending: room
  assert.equal(outcomes.length, 1);
  send(T0 + 101, syn(2001), F_NEW_FLOW | F_FROM_CLIENT); // 100 pending: the oldest (1001) goes
  assert.deepEqual(
    outcomes.slice(1).map((o) => [o.port, o.success]),
    [[1001, false]],
  );
  assert.equal(t.size, 100);
});

test('ICMP unreachable fails the attempt it quotes; time exceeded withdraws it without an outcome', () => {
  const { t, outcomes, send } = tracker();
  send(T0, syn(161), F_NEW_FLOW | F_FROM_CLIENT);
  send(T0 + 1, syn(162), F_NEW_FLOW | F_FROM_CLIENT);
  send(T0 + 1000, icmpError(3, 161), 0);
  assert.deepEqual(
    outcomes.map((o) => [o.port, o.success]),
    [[161, false]],
  );
  send(T0 + 2000, icmpError(11, 162), 0);
  assert.equal(t.size, 0);
  t.flush(T0 + 60e6);
  assert.equal(outcomes.length, 1, 'the withdrawn attempt never gets an outcome');
});

test('the timeout of an answered attempt does not reach a later attempt in its place', () => {
  const { t, outcomes, send } = tracker();
  send(T0, syn(80), F_NEW_FLOW | F_FROM_CLIENT);
  send(T0 + 1000, reply(80, TCP_FLAGS.SYN | TCP_FLAGS.ACK), F_FIRST_REPLY);
  // A new attempt 2 s later takes the answered one's storage (and, here, its key).
  send(T0 + 2e6, syn(80, 40002), F_NEW_FLOW | F_FROM_CLIENT);
  t.tick(T0 + TIMEOUT_SEC * 1e6 + 1); // the first attempt's timeout
  assert.equal(outcomes.length, 1);
  assert.equal(t.size, 1, 'the second attempt is still pending');
  t.tick(T0 + 2e6 + TIMEOUT_SEC * 1e6);
  assert.deepEqual(
    outcomes.map((o) => [o.port, o.ts, o.success]),
    [
      [80, T0, true],
      [80, T0 + 2e6, false],
    ],
  );
});
