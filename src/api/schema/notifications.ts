// Notifications (src/notify): the channels with their delivery state, the recent notifications, a
// test notification, and acknowledging an anomaly (who, when, note), which stops its repeats.
// Without --notify-config the lists are empty and the mutations say so.
import { type Acknowledgement, type ChannelState, notifierOf, type RecentNotification } from '../../notify/notifier.js';
import type { AnomalyRecord } from '../../store/types.js';
import type { ApiContext } from '../context.js';
import { AnomalyRef } from './anomalies.js';
import { builder, userError } from './builder.js';

const ms = (t: number | null) => (t === null ? null : t * 1000);

const ChannelRef = builder.objectRef<ChannelState>('NotificationChannel').implement({
  description: 'A notification channel of --notify-config and its delivery state since the server started.',
  fields: (t) => ({
    name: t.exposeString('name'),
    type: t.exposeString('type', { description: 'webhook, slack, alertmanager, syslog or email.' }),
    lastSuccess: t.field({ type: 'DateTime', nullable: true, resolve: (c) => ms(c.lastSuccess), description: 'Last delivery the receiver accepted.' }),
    lastError: t.exposeString('lastError', { nullable: true, description: 'The last failed delivery, as the sender saw it.' }),
    lastErrorAt: t.field({ type: 'DateTime', nullable: true, resolve: (c) => ms(c.lastErrorAt) }),
    queueDepth: t.int({ resolve: (c) => c.queued, description: 'Notifications waiting in its outbox.' }),
    sent: t.field({ type: 'Counter', resolve: (c) => c.sent }),
    failed: t.field({ type: 'Counter', resolve: (c) => c.failed, description: 'Notifications in failed attempts (each retry counts).' }),
    retrying: t.boolean({ resolve: (c) => c.backingOff, description: 'True while it retries after a failure.' }),
  }),
});

const NotificationStatusEnum = builder.enumType('NotificationStatus', {
  values: { FIRING: { value: 'firing' }, RESOLVED: { value: 'resolved' } } as const,
});

const NotificationRef = builder.objectRef<RecentNotification>('Notification').implement({
  description: 'A notification queued on one channel.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Stable: anomaly id, status and sequence; a retry carries the same id.' }),
    channel: t.exposeString('channel'),
    status: t.field({ type: NotificationStatusEnum, resolve: (n) => n.status }),
    anomalyId: t.exposeID('anomalyId'),
    kind: t.exposeString('kind'),
    severity: t.exposeString('severity'),
    summary: t.exposeString('summary'),
    test: t.exposeBoolean('test'),
    queuedAt: t.field({ type: 'DateTime', resolve: (n) => n.queuedAt * 1000 }),
    sentAt: t.field({ type: 'DateTime', nullable: true, resolve: (n) => ms(n.sentAt), description: 'When the receiver took it; null while queued.' }),
  }),
});

const AcknowledgementRef = builder.objectRef<Acknowledgement>('Acknowledgement').implement({
  fields: (t) => ({
    by: t.exposeString('by'),
    at: t.field({ type: 'DateTime', resolve: (a) => a.at * 1000 }),
    note: t.exposeString('note'),
  }),
});

function notifier(ctx: ApiContext) {
  const n = notifierOf(ctx.bus);
  if (!n) throw userError('notifications are not configured on this server (--notify-config)');
  return n;
}

builder.queryField('notificationChannels', (t) =>
  t.field({
    type: [ChannelRef],
    description: 'The notification channels and their state; empty without --notify-config.',
    resolve: (_root, _args, ctx) => notifierOf(ctx.bus)?.channels() ?? [],
  }),
);

builder.queryField('recentNotifications', (t) =>
  t.field({
    type: [NotificationRef],
    description: 'The most recent notifications queued (newest first), delivered or not.',
    args: { limit: t.arg.int({ defaultValue: 50, description: 'At most 200.' }) },
    resolve: (_root, args, ctx) => {
      const limit = args.limit ?? 50;
      if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw userError(`limit must be an integer from 1 to 200; got ${limit}`);
      return notifierOf(ctx.bus)?.recentNotifications(limit) ?? [];
    },
  }),
);

builder.mutationField('sendTestNotification', (t) =>
  t.field({
    type: NotificationRef,
    description: 'Queues a test notification on one channel (sent at once, without waiting for a group).',
    args: { channel: t.arg.string({ required: true }), by: t.arg.string({ description: 'Who asked (in the message).' }) },
    resolve: (_root, args, ctx) => {
      const n = notifier(ctx);
      const sent = n.sendTest(args.channel, args.by ?? 'api');
      if (!sent)
        throw userError(
          `no notification channel '${args.channel}' (channels: ${n
            .channels()
            .map((c) => c.name)
            .join(', ')})`,
        );
      return n.recentNotifications(200).find((r) => r.id === sent.id && r.channel === args.channel) as RecentNotification;
    },
  }),
);

builder.mutationField('acknowledgeAnomaly', (t) =>
  t.field({
    type: AcknowledgementRef,
    description: 'Acknowledges a notified anomaly: it is not notified again while it lasts (its resolution still is).',
    args: { id: t.arg.id({ required: true }), by: t.arg.string({ required: true }), note: t.arg.string() },
    resolve: (_root, args, ctx) => {
      const by = args.by.trim();
      if (by === '' || by.length > 200) throw userError('by: 1 to 200 characters');
      if ((args.note ?? '').length > 2000) throw userError('note: at most 2000 characters');
      const ack = notifier(ctx).acknowledge(String(args.id), by, args.note ?? '');
      if (!ack) throw userError(`anomaly ${args.id} has not been notified (or is long gone): nothing to acknowledge`);
      return ack;
    },
  }),
);

builder.objectField(AnomalyRef, 'acknowledgement', (t) =>
  t.field({
    type: AcknowledgementRef,
    nullable: true,
    description: 'Who acknowledged it, when, with what note (notifications); null when nobody has.',
    resolve: (a: AnomalyRecord, _args, ctx) => notifierOf(ctx.bus)?.acknowledgement(a.anomalyId) ?? null,
  }),
);
