// Imports into the running server: the `importCapture` upload mutation and the `importProgress`
// subscription. The server imports with its own store and bus, so flow subscribers see the
// uploaded traffic live.
import type { ImportSummary } from '../../capture/import.js';
import { ImportBusyError, type ImportJob } from '../imports.js';
import { sourceIterator } from '../stream.js';
import type { ApiContext } from '../context.js';
import type { DiskUpload } from '../uploads.js';
import { builder, userError } from './builder.js';

const PROGRESS_QUEUE = 1_000;

const ImportStateEnum = builder.enumType('ImportState', {
  values: { UPLOADING: { value: 'uploading' }, RUNNING: { value: 'running' }, DONE: { value: 'done' }, FAILED: { value: 'failed' } } as const,
});

const ReasonCount = builder.objectRef<{ reason: string; count: number }>('ReasonCount').implement({
  fields: (t) => ({ reason: t.exposeString('reason'), count: t.field({ type: 'Counter', resolve: (r) => r.count }) }),
});

const ImportFile = builder.objectRef<ImportSummary['files'][number]>('ImportFile').implement({
  fields: (t) => ({
    name: t.string({ resolve: (f) => f.path }),
    format: t.exposeString('format'),
    packets: t.field({ type: 'Counter', resolve: (f) => f.packets }),
    bytes: t.field({ type: 'Counter', resolve: (f) => f.bytes }),
    malformed: t.field({ type: 'Counter', resolve: (f) => f.malformed }),
    linkTypes: t.exposeIntList('linkTypes'),
    error: t.exposeString('error', { nullable: true }),
    warning: t.exposeString('warning', { nullable: true }),
  }),
});

const ImportSummaryRef = builder.objectRef<ImportSummary>('ImportSummary').implement({
  description: 'What an import did (the same figures `flowlens import --json` prints).',
  fields: (t) => ({
    packets: t.field({ type: 'Counter', resolve: (s) => s.packets }),
    bytes: t.field({ type: 'Counter', resolve: (s) => s.bytes }),
    flows: t.field({ type: 'Counter', resolve: (s) => s.flows }),
    hosts: t.field({ type: 'Counter', resolve: (s) => s.hosts }),
    nonIp: t.field({ type: 'Counter', resolve: (s) => s.nonIp }),
    fragments: t.field({ type: 'Counter', resolve: (s) => s.fragments }),
    malformed: t.field({ type: 'Counter', resolve: (s) => s.malformed }),
    malformedByReason: t.field({ type: [ReasonCount], resolve: (s) => Object.entries(s.malformedByReason).map(([reason, count]) => ({ reason, count })) }),
    files: t.field({ type: [ImportFile], resolve: (s) => s.files }),
    seconds: t.exposeFloat('seconds'),
    packetsPerSecond: t.exposeFloat('packetsPerSecond'),
    interrupted: t.exposeBoolean('interrupted', { description: 'The server shut down during the import; what was decoded is stored.' }),
    anomalies: t.field({ type: 'Counter', resolve: (s) => s.anomalies, description: 'Anomalies detected in the capture.' }),
    firstPacket: t.string({ nullable: true, resolve: (s) => s.firstPacket || null, description: 'Time of the earliest packet, ISO 8601 with µs.' }),
    lastPacket: t.string({ nullable: true, resolve: (s) => s.lastPacket || null, description: 'Time of the latest packet, ISO 8601 with µs.' }),
  }),
});

export const ImportJobRef = builder.objectRef<ImportJob>('Import').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    fileName: t.exposeString('fileName'),
    state: t.field({ type: ImportStateEnum, resolve: (j) => j.state }),
    startedAt: t.field({ type: 'DateTime', resolve: (j) => j.startedAt }),
    bytesRead: t.field({ type: 'Counter', resolve: (j) => j.bytesRead }),
    totalBytes: t.field({ type: 'Counter', resolve: (j) => j.totalBytes }),
    packets: t.field({ type: 'Counter', resolve: (j) => j.packets }),
    elapsedSeconds: t.float({ resolve: (j) => j.elapsedSec }),
    summary: t.field({ type: ImportSummaryRef, nullable: true, resolve: (j) => j.summary ?? null, description: 'Set when the import has finished.' }),
    error: t.exposeString('error', { nullable: true }),
  }),
});

async function importUploads(ctx: ApiContext, ids: string[], node: string | null | undefined): Promise<ImportJob> {
  if (ids.length === 0) throw userError('no files');
  const upload = ctx.upload;
  // The File variables hold ids of files this very request uploaded (uploads.ts); nothing else names a file.
  const files = ids.map((id) => upload?.files.get(id));
  if (!upload || files.some((f) => f === undefined)) throw userError('File must be a file part of a multipart request (GraphQL multipart request spec)');
  try {
    return await ctx.imports.importUploads(files as DiskUpload[], upload.slot, node ?? undefined);
  } catch (err) {
    if (err instanceof ImportBusyError) throw userError(err.message);
    throw err;
  }
}

const nodeArg = { description: "Worker node name in the records (default: the server's)." };

builder.mutationField('importCapture', (t) =>
  t.field({
    type: ImportJobRef,
    description:
      "Imports an uploaded pcap/pcapng file into the server's store; returns when it has finished. A file the reader rejects gives state FAILED with the error.",
    args: { file: t.arg({ type: 'File', required: true }), node: t.arg.string(nodeArg) },
    resolve: (_root, args, ctx) => importUploads(ctx, [args.file], args.node),
  }),
);

builder.mutationField('importCaptures', (t) =>
  t.field({
    type: ImportJobRef,
    description: 'Imports several uploaded files as one capture (flows continue across them), like `flowlens import A B`.',
    args: { files: t.arg({ type: ['File'], required: true }), node: t.arg.string(nodeArg) },
    resolve: (_root, args, ctx) => importUploads(ctx, args.files, args.node),
  }),
);

builder.subscriptionField('importProgress', (t) =>
  t.field({
    type: ImportJobRef,
    description: 'Progress of imports through this server as they run, and their end (state DONE or FAILED).',
    args: { id: t.arg.id({ description: 'Only this import.' }) },
    subscribe: (_root, args, ctx) =>
      sourceIterator<ImportJob, ImportJob>((handler) => ctx.imports.onProgress(handler), {
        capacity: PROGRESS_QUEUE,
        map: (job) => (args.id == null || String(args.id) === job.id ? job : undefined),
        onDrop: () => ctx.dropped('import'),
        onClose: ctx.subscriptionOpened('importProgress'),
      }),
    resolve: (j) => j,
  }),
);
