// Nothing lost, nothing doubled: the outbox keeps notifications while their receiver is down (closed
// port) or refusing (HTTP 503), across a restart of the notifier, and delivers them in order,
// exactly once per id, when it is back. Also: rate limits hold a burst and group it, repeats of
// long-running anomalies, acknowledgement stopping them, and a resolve after a restart.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseNotifyConfig } from '../src/notify/config.js';
import { Notifier } from '../src/notify/notifier.js';
import { Outbox } from '../src/notify/outbox.js';
import { anomaly, freePort, HttpReceiver, waitFor } from './helpers/notify-receivers.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-outbox-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function config(name: string, url: string, extra: Record<string, unknown> = {}, channel: Record<string, unknown> = {}) {
  return parseNotifyConfig(
    `${name}.json`,
    JSON.stringify({
      outbox: join(dir, name),
      groupWaitSec: 0,
      maxGroup: 10,
      retry: { initialSec: 0.05, maxSec: 0.4 },
      channels: { hook: { type: 'webhook', url, timeoutSec: 2, ...channel } },
      routes: [{ channels: ['hook'] }],
      ...extra,
    }),
  );
}

/** The notification ids a receiver got, in the order it got them. */
function received(r: HttpReceiver): string[] {
  return r.requests.flatMap((q) => (JSON.parse(q.body) as { notifications: { id: string }[] }).notifications.map((n) => n.id));
}

describe('outbox', () => {
  test('a receiver down, then the notifier restarted: every notification once, in order', async () => {
    const port = await freePort();
    const receiver = new HttpReceiver();
    const url = `http://127.0.0.1:${port}/hook`;
    let notifier = new Notifier(config('outage', url)).start();
    const expected: string[] = [];
    // 30 anomalies fire while nothing listens on the port; 15 of them end.
    for (let i = 0; i < 30; i++) {
      notifier.anomaly({ type: 'start', anomaly: anomaly(`a${i}`) });
      expected.push(`a${i}-firing-0`);
      if (i % 2 === 0) {
        notifier.anomaly({ type: 'end', anomaly: anomaly(`a${i}`, { state: 'ended' }) });
        expected.push(`a${i}-resolved-0`);
      }
    }
    await waitFor('failed attempts', () => (notifier.channels()[0].failed >= 20 ? true : undefined));
    const [state] = notifier.channels();
    assert.equal(state.queued, 45);
    assert.equal(state.backingOff, true);
    assert.match(state.lastError ?? '', /fetch failed|ECONNREFUSED/);
    assert.equal(state.sent, 0);

    // Restart while it is down: the new notifier takes up the outbox on disk.
    await notifier.close();
    notifier = new Notifier(config('outage', url)).start();
    assert.equal(notifier.channels()[0].queued, 45);
    // The same events offered again (a re-imported capture, a replayed bus) queue nothing new;
    // the odd anomalies, not followed any more, end now: each resolves exactly once.
    for (let i = 0; i < 30; i++) {
      notifier.anomaly({ type: 'start', anomaly: anomaly(`a${i}`) });
      if (i % 2 === 0) notifier.anomaly({ type: 'end', anomaly: anomaly(`a${i}`, { state: 'ended' }) });
    }
    for (let i = 1; i < 30; i += 2) {
      notifier.anomaly({ type: 'end', anomaly: anomaly(`a${i}`, { state: 'ended' }) });
      expected.push(`a${i}-resolved-0`);
    }
    assert.equal(notifier.channels()[0].queued, 60);
    await sleep(500);

    // Back: everything arrives, in queue order, once.
    await receiver.start(port);
    await waitFor('delivery after the outage', () => (notifier.channels()[0].queued === 0 ? true : undefined));
    assert.deepEqual(received(receiver), expected);
    assert.ok(
      receiver.requests.every((r) => (JSON.parse(r.body) as { notifications: unknown[] }).notifications.length <= 10),
      'maxGroup',
    );
    assert.equal(notifier.channels()[0].sent, 60);
    // Delivered files are gone; the journal remains.
    assert.deepEqual(readdirSync(join(dir, 'outage', 'hook')), ['queued-ids.log']);
    await notifier.close();
    await receiver.stop();
  });

  test('a receiver refusing (HTTP 503) is retried with back-off until it accepts', async () => {
    const receiver = await new HttpReceiver().start();
    receiver.refuse = true;
    const notifier = new Notifier(config('refusing', `${receiver.url}/x`)).start();
    notifier.anomaly({ type: 'start', anomaly: anomaly('r1') });
    await waitFor('refusals', () => (notifier.channels()[0].failed >= 3 ? true : undefined));
    assert.match(notifier.channels()[0].lastError ?? '', /HTTP 503 down for maintenance/);
    receiver.refuse = false;
    await waitFor('delivery', () => (notifier.channels()[0].sent === 1 ? true : undefined));
    assert.deepEqual(received(receiver), ['r1-firing-0']);
    assert.equal(notifier.channels()[0].backingOff, false);
    await notifier.close();
    await receiver.stop();
  });

  test('an outbox file cut short by a crash is set aside; the rest is delivered', () => {
    const d = join(dir, 'crash');
    const box = new Outbox(d);
    assert.equal(box.add({ id: 'x-firing-0', status: 'firing', seq: 0, queuedAt: 1, anomaly: anomaly('x') }), true);
    assert.equal(box.add({ id: 'x-firing-0', status: 'firing', seq: 0, queuedAt: 2, anomaly: anomaly('x') }), false);
    assert.equal(box.add({ id: 'y-firing-0', status: 'firing', seq: 0, queuedAt: 3, anomaly: anomaly('y') }), true);
    writeFileSync(join(d, '000000000000.json'), '{"id":"x-fir');
    const again = new Outbox(d);
    assert.deepEqual(
      again.peek(10).map((n) => n.id),
      ['y-firing-0'],
    );
    assert.ok(readdirSync(d).includes('000000000000.json.unreadable'));
    // Still remembered: not queued again.
    assert.equal(again.add({ id: 'x-firing-0', status: 'firing', seq: 0, queuedAt: 4, anomaly: anomaly('x') }), false);
  });
});

describe('rate limits, repeats, acknowledgement', () => {
  test('a rate limit holds a burst, which then goes as one message', async () => {
    const receiver = await new HttpReceiver().start();
    const notifier = new Notifier(config('rate', `${receiver.url}/r`, {}, { rateLimit: { messages: 1, perSec: 1 } })).start();
    notifier.anomaly({ type: 'start', anomaly: anomaly('first') });
    await waitFor('the first message', () => (receiver.requests.length === 1 ? true : undefined));
    const t1 = Date.now();
    for (let i = 0; i < 6; i++) notifier.anomaly({ type: 'start', anomaly: anomaly(`burst${i}`) });
    await sleep(300);
    assert.equal(receiver.requests.length, 1, 'held by the rate limit');
    await waitFor('the burst', () => (receiver.requests.length === 2 ? true : undefined), 3000);
    assert.ok(Date.now() - t1 >= 600, 'not before the window passed');
    assert.deepEqual(
      received(receiver).slice(1),
      [0, 1, 2, 3, 4, 5].map((i) => `burst${i}-firing-0`),
    );
    await notifier.close();
    await receiver.stop();
  });

  test('repeats of an active anomaly until acknowledged; the resolve carries the last sequence', async () => {
    const receiver = await new HttpReceiver().start();
    const notifier = new Notifier(config('repeat', `${receiver.url}/r`, { repeatIntervalSec: 60 })).start();
    notifier.anomaly({ type: 'start', anomaly: anomaly('long') });
    notifier.anomaly({ type: 'start', anomaly: anomaly('acked') });
    const now = Date.now();
    notifier.repeatDue(now + 30_000); // not yet
    notifier.repeatDue(now + 61_000);
    notifier.repeatDue(now + 62_000); // not again so soon
    assert.ok(notifier.acknowledge('acked', 'alice', 'known pentest'));
    assert.equal(notifier.acknowledgement('acked')?.by, 'alice');
    assert.equal(notifier.acknowledge('unknown', 'alice', ''), null);
    notifier.repeatDue(now + 122_000);
    notifier.anomaly({ type: 'end', anomaly: anomaly('long', { state: 'ended' }) });
    notifier.anomaly({ type: 'end', anomaly: anomaly('acked', { state: 'ended' }) });
    notifier.repeatDue(now + 400_000); // ended: no repeats
    await waitFor('delivery', () => (notifier.channels()[0].queued === 0 && notifier.channels()[0].sent === 7 ? true : undefined));
    assert.deepEqual(received(receiver), [
      'long-firing-0',
      'acked-firing-0',
      'long-firing-1',
      'acked-firing-1',
      'long-firing-2',
      'long-resolved-2',
      'acked-resolved-1',
    ]);
    await notifier.close();
    await receiver.stop();
  });

  test('an acknowledgement survives a restart: still shown, and still no repeats', async () => {
    const receiver = await new HttpReceiver().start();
    const cfg = config('ack-restart', `${receiver.url}/r`, { repeatIntervalSec: 60 });
    let notifier = new Notifier(cfg).start();
    notifier.anomaly({ type: 'start', anomaly: anomaly('kept') });
    notifier.anomaly({ type: 'start', anomaly: anomaly('open') });
    assert.ok(notifier.acknowledge('kept', 'carol', 'ticket 42'));
    await waitFor('delivery', () => (notifier.channels()[0].sent === 2 ? true : undefined));
    await notifier.close();
    notifier = new Notifier(cfg).start();
    assert.deepEqual((({ by, note }) => ({ by, note }))(notifier.acknowledgement('kept') ?? { by: '', note: '' }), { by: 'carol', note: 'ticket 42' });
    // Both still active after the restart (their next updates follow them again): only the open one repeats.
    notifier.anomaly({ type: 'update', anomaly: anomaly('kept') });
    notifier.anomaly({ type: 'update', anomaly: anomaly('open') });
    notifier.repeatDue(Date.now() + 61_000);
    await waitFor('the repeat', () => (notifier.channels()[0].sent === 1 ? true : undefined));
    await sleep(200);
    assert.deepEqual(received(receiver), ['kept-firing-0', 'open-firing-0', 'open-firing-1']);
    await notifier.close();
    await receiver.stop();
  });

  test('sendResolved false: no resolved notifications', async () => {
    const receiver = await new HttpReceiver().start();
    const notifier = new Notifier(config('noresolve', `${receiver.url}/r`, { sendResolved: false })).start();
    notifier.anomaly({ type: 'start', anomaly: anomaly('q') });
    notifier.anomaly({ type: 'end', anomaly: anomaly('q', { state: 'ended' }) });
    await waitFor('delivery', () => (notifier.channels()[0].sent === 1 ? true : undefined));
    await sleep(200);
    assert.deepEqual(received(receiver), ['q-firing-0']);
    await notifier.close();
    await receiver.stop();
  });
});
