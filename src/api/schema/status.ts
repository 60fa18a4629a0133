// captureStatus: live capture (from the server's status provider), imports through this server,
// and the store's health.
import type { StoreHealth } from '../../store/types.js';
import type { CaptureInterfaceStatus, WorkerStatus } from '../status.js';
import { builder, orNull } from './builder.js';
import { ImportJobRef } from './imports.js';

const CaptureInterfaceRef = builder.objectRef<CaptureInterfaceStatus>('CaptureInterface').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    node: t.string({ nullable: true, resolve: (i) => orNull(i.node) }),
    packets: t.field({ type: 'Counter', resolve: (i) => i.packets }),
    drops: t.field({ type: 'Counter', resolve: (i) => i.drops }),
  }),
});

const WorkerRef = builder.objectRef<WorkerStatus>('Worker').implement({
  fields: (t) => ({
    node: t.exposeString('node'),
    lastSeen: t.field({ type: 'DateTime', resolve: (w) => w.lastSeen }),
  }),
});

const StoreHealthRef = builder.objectRef<StoreHealth>('StoreHealth').implement({
  fields: (t) => ({
    backend: t.exposeString('backend'),
    ok: t.exposeBoolean('ok'),
    detail: t.string({ nullable: true, resolve: (h) => h.detail ?? null }),
    spooled: t.int({ resolve: (h) => h.spooled ?? 0, description: 'Batches waiting in an outage spool.' }),
  }),
});

const CaptureStatusRef = builder.objectRef<Record<string, never>>('CaptureStatus').implement({
  fields: (t) => ({
    interfaces: t.field({
      type: [CaptureInterfaceRef],
      resolve: (_s, _a, ctx) => ctx.status.interfaces(),
      description: 'Live capture interfaces (none when the server only imports).',
    }),
    packets: t.field({
      type: 'Counter',
      description: 'Packets captured on the interfaces plus packets imported through this server since it started.',
      resolve: (_s, _a, ctx) => ctx.status.interfaces().reduce((n, i) => n + i.packets, 0) + ctx.metrics.value('flowlens_import_packets_total'),
    }),
    drops: t.field({
      type: 'Counter',
      resolve: (_s, _a, ctx) => ctx.status.interfaces().reduce((n, i) => n + i.drops, 0),
      description: 'Packets the interfaces dropped.',
    }),
    workers: t.field({ type: [WorkerRef], resolve: (_s, _a, ctx) => ctx.status.workers() }),
    imports: t.field({ type: [ImportJobRef], resolve: (_s, _a, ctx) => ctx.imports.inProgress(), description: 'Imports in progress.' }),
    recentImports: t.field({
      type: [ImportJobRef],
      resolve: (_s, _a, ctx) => ctx.imports.recent(),
      description: 'Imports in progress and the last finished ones.',
    }),
    store: t.field({ type: StoreHealthRef, resolve: (_s, _a, ctx) => ctx.store.health() }),
    startedAt: t.field({ type: 'DateTime', resolve: (_s, _a, ctx) => ctx.startedAt, description: 'When the server started.' }),
  }),
});

builder.queryField('captureStatus', (t) => t.field({ type: CaptureStatusRef, resolve: () => ({}) }));
