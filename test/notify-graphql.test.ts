// The API's view of notifications: channels with their state (last success, last error, queue
// depth), recent notifications, the test-notification mutation, and acknowledging an anomaly
// (who, when, note), which stops its repeats and shows on the Anomaly. A real server, a DuckDB
// store, the anomaly on the store and the bus; an HTTP receiver that is up and a port that is not.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseNotifyConfig } from '../src/notify/config.js';
import { attachNotifier, Notifier } from '../src/notify/notifier.js';
import { gql, gqlData, startTestServer, type TestServer } from './api-helpers.js';
import { anomaly, freePort, HttpReceiver, waitFor } from './helpers/notify-receivers.js';

let dir: string;
let t: TestServer;
let notifier: Notifier;
const receiver = new HttpReceiver();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flowlens-notify-gql-'));
  await receiver.start();
  const down = await freePort();
  notifier = new Notifier(
    parseNotifyConfig(
      'notify.json',
      JSON.stringify({
        outbox: join(dir, 'outbox'),
        groupWaitSec: 0,
        repeatIntervalSec: 60,
        retry: { initialSec: 0.1, maxSec: 0.2 },
        channels: { up: { type: 'webhook', url: `${receiver.url}/up` }, down: { type: 'slack', url: `http://127.0.0.1:${down}/x`, timeoutSec: 1 } },
        routes: [{ channels: ['up', 'down'] }],
      }),
    ),
  ).start();
  t = await startTestServer();
  // As `serve --notify-config` does (src/notify/alerting.ts).
  t.bus.subscribe('anomaly', (e) => notifier.anomaly(e));
  attachNotifier(t.bus, notifier);
});

after(async () => {
  await notifier?.close();
  await t?.stop();
  await receiver.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('notifications in the API', () => {
  test('channels, recent notifications, a test notification, acknowledgement', async () => {
    const a = anomaly('gql-1');
    await t.store.write({ flows: [], hosts: [], traffic: [], anomalies: [a] });
    await t.store.flush();
    t.bus.publish('anomaly', { type: 'start', anomaly: a });
    await waitFor('delivery and a failure', () => (notifier.channels().every((c) => c.sent + c.failed > 0) ? true : undefined));

    const data = await gqlData(t.url, '{ notificationChannels { name type lastSuccess lastError lastErrorAt queueDepth sent failed retrying } }');
    const byName = Object.fromEntries((data.notificationChannels as { name: string }[]).map((c) => [c.name, c])) as Record<string, Record<string, unknown>>;
    assert.equal(byName.up.type, 'webhook');
    assert.equal(byName.up.sent, 1);
    assert.equal(byName.up.queueDepth, 0);
    assert.match(byName.up.lastSuccess as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    assert.equal(byName.down.type, 'slack');
    assert.equal(byName.down.queueDepth, 1);
    assert.equal(byName.down.retrying, true);
    assert.match(byName.down.lastError as string, /fetch failed|ECONNREFUSED/);

    const sent = await gqlData(t.url, 'mutation { sendTestNotification(channel: "up", by: "alice") { id channel test status } }');
    assert.equal(sent.sendTestNotification.channel, 'up');
    assert.equal(sent.sendTestNotification.test, true);
    await waitFor('the test notification', () => (receiver.requests.length === 2 ? true : undefined));
    assert.match(receiver.requests[1].body, /"test":true/);
    const unknown = await gql(t.url, 'mutation { sendTestNotification(channel: "pager") { id } }');
    assert.match(unknown.errors?.[0].message ?? '', /no notification channel 'pager' \(channels: up, down\)/);

    const recent = await gqlData(t.url, '{ recentNotifications(limit: 10) { id channel status anomalyId kind severity test queuedAt sentAt } }');
    const rows = recent.recentNotifications as { id: string; channel: string; sentAt: string | null; test: boolean }[];
    assert.deepEqual(
      rows.map((r) => [r.channel, r.id.replace(/-\d+$/, ''), r.sentAt !== null]),
      [
        ['up', 'test-up', true],
        ['down', 'gql-1-firing', false],
        ['up', 'gql-1-firing', true],
      ],
    );
    assert.match((await gql(t.url, '{ recentNotifications(limit: 500) { id } }')).errors?.[0].message ?? '', /limit must be an integer from 1 to 200/);

    // Acknowledged: no repeat; the Anomaly shows who, when and the note.
    const ack = await gqlData(t.url, 'mutation($id: ID!) { acknowledgeAnomaly(id: $id, by: "bob", note: "known scanner") { by at note } }', { id: 'gql-1' });
    assert.equal(ack.acknowledgeAnomaly.by, 'bob');
    assert.equal(ack.acknowledgeAnomaly.note, 'known scanner');
    const shown = await gqlData(t.url, '{ anomalies(from: "2023-11-14T00:00:00Z", to: "2023-11-16T00:00:00Z") { id acknowledgement { by note } } }');
    assert.deepEqual(shown.anomalies, [{ id: 'gql-1', acknowledgement: { by: 'bob', note: 'known scanner' } }]);
    notifier.repeatDue(Date.now() + 120_000);
    assert.equal(notifier.recentNotifications(200).filter((r) => r.id.startsWith('gql-1-firing-1')).length, 0, 'no repeat once acknowledged');
    const none = await gql(t.url, 'mutation { acknowledgeAnomaly(id: "nope", by: "bob") { by } }');
    assert.match(none.errors?.[0].message ?? '', /anomaly nope has not been notified/);
    const blank = await gql(t.url, 'mutation { acknowledgeAnomaly(id: "gql-1", by: "  ") { by } }');
    assert.match(blank.errors?.[0].message ?? '', /by: 1 to 200 characters/);
  });

  test('without --notify-config: empty lists, and the mutations say why', async () => {
    const bare = await startTestServer();
    try {
      const data = await gqlData(bare.url, '{ notificationChannels { name } recentNotifications { id } }');
      assert.deepEqual(data, { notificationChannels: [], recentNotifications: [] });
      const r = await gql(bare.url, 'mutation { sendTestNotification(channel: "x") { id } }');
      assert.match(r.errors?.[0].message ?? '', /notifications are not configured on this server \(--notify-config\)/);
    } finally {
      await bare.stop();
    }
  });
});
