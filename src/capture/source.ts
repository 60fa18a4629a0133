// The source of a run's records: the key that makes a write count exactly once. Rows carry it;
// the stores replace rows of the same source and key (a re-import, a spool replay, a retried batch)
// and add up rows of different sources (two halves of a capture, a capture restarted in the middle
// of an interval, two workers' runs, two uploads).
//
// An import's source comes from what it reads, so that importing the same files again names the
// same source: each file's size and its first and last MiB (reading all of a large capture twice
// would cost an import as much as its decoding), in the order given. What is not a regular file (a
// FIFO, a device: read once, and opening it here would take the reader's place) makes the source
// new, as a live capture's is at every start.
import { createHash, randomBytes } from 'node:crypto';
import { open, stat } from 'node:fs/promises';

const SAMPLE_BYTES = 1024 * 1024;

/** 16 hex digits naming the content of these files, in this order. */
export async function importSource(paths: string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const path of paths) {
    const info = await stat(path).catch(() => null);
    if (info && !info.isFile()) return liveSource();
    let file: Awaited<ReturnType<typeof open>> | undefined;
    try {
      file = await open(path, 'r');
      const { size } = await file.stat();
      hash.update(`${size}\n`);
      const head = Buffer.alloc(Math.min(size, SAMPLE_BYTES));
      await file.read(head, 0, head.length, 0);
      hash.update(head);
      if (size > SAMPLE_BYTES) {
        const tail = Buffer.alloc(Math.min(size - SAMPLE_BYTES, SAMPLE_BYTES));
        await file.read(tail, 0, tail.length, size - tail.length);
        hash.update(tail);
      }
    } catch {
      // A file that cannot be read fails in the import itself, with its reason; here it only names itself.
      hash.update(`unreadable ${path}\n`);
    } finally {
      await file?.close();
    }
  }
  return `i${hash.digest('hex').slice(0, 15)}`;
}

/** A live capture's source: new at every start. */
export function liveSource(): string {
  return `l${randomBytes(8).toString('hex').slice(0, 15)}`;
}
