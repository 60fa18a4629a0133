// The decode ring's high-water mark (RingWriter.peakUsed): what `ring peak` and
// flowlens_capture_ring_peak_fill_ratio report, so that it must count exactly the bytes in use.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultRingMb } from '../src/capture/live.js';
import { RECORD_HEADER, RingReader, RingWriter, ringCapacity } from '../src/capture/ring.js';

const frame = Buffer.alloc(1000, 7);
/** Bytes a 1000-byte frame takes in the ring: the header and the frame padded to 4. */
const RECORD = RECORD_HEADER + 1000;

test('peakUsed is the most bytes ever in use, the record being written included', () => {
  const ring = RingWriter.create(ringCapacity(64 * 1024));
  const reader = new RingReader(ring.sab);
  assert.equal(ring.peakUsed, 0);
  for (let i = 0; i < 10; i++) assert.ok(ring.write(frame, 1000, 1000, 0, 0, 1, 0));
  assert.equal(ring.peakUsed, 10 * RECORD);
  let read = 0;
  reader.drain(() => read++);
  assert.equal(read, 10);
  // Emptied: writing again does not lower the mark, and three records stay below it.
  for (let i = 0; i < 3; i++) assert.ok(ring.write(frame, 1000, 1000, 0, 0, 1, 0));
  assert.equal(ring.peakUsed, 10 * RECORD);
  reader.drain(() => read++);
});

test('a record that skips the tail of the ring counts the skipped bytes', () => {
  const capacity = ringCapacity(64 * 1024);
  const ring = RingWriter.create(capacity);
  const reader = new RingReader(ring.sab);
  const fit = Math.floor(capacity / RECORD); // records before the tail is too short for one
  for (let i = 0; i < fit; i++) assert.ok(ring.write(frame, 1000, 1000, 0, 0, 1, 0));
  reader.drain(() => {});
  const tail = capacity - fit * RECORD;
  assert.ok(tail < RECORD);
  // The next record starts at offset 0: the tail it skipped is in use until the reader passes it.
  assert.ok(ring.write(frame, 1000, 1000, 0, 0, 1, 0));
  assert.equal(ring.used(), tail + RECORD);
  assert.equal(ring.peakUsed, fit * RECORD);
  for (let i = 0; i < fit - 1; i++) assert.ok(ring.write(frame, 1000, 1000, 0, 0, 1, 0));
  assert.equal(ring.peakUsed, tail + fit * RECORD);
});

test('a frame refused for want of room sets the mark to the whole ring', () => {
  const capacity = ringCapacity(64 * 1024);
  const ring = RingWriter.create(capacity);
  while (ring.write(frame, 1000, 1000, 0, 0, 1, 0));
  assert.equal(ring.peakUsed, capacity);
});

test('the default rings: 128 MiB over the decode workers, at least 32 MiB each', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 8].map((n) => defaultRingMb(n)),
    [128, 64, 42, 32, 32],
  );
  // 42 MiB is a 32 MiB ring: capacities are powers of two.
  assert.equal(ringCapacity(defaultRingMb(3) * 1024 * 1024), 32 * 1024 * 1024);
});
