// Multipart uploads (the GraphQL multipart request spec) streamed to disk as they arrive, under
// their limits: the bytes are counted while they stream, so an upload over the limit is refused
// before it fills memory or disk, and nothing of it is kept. The operation then runs as a JSON
// request whose File variables hold the ids of the files on disk (see the File scalar).
import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import busboy from 'busboy';

/** One uploaded file, on disk. */
export interface DiskUpload {
  path: string;
  /** The client's file name, made safe (no directories, no odd characters). */
  name: string;
  size: number;
}

export interface ReceivedUpload {
  /** The GraphQL request ({ query, variables, operationName }) with each file's id in place. */
  operations: Record<string, unknown>;
  /** By id (the value of the File variables). */
  files: Map<string, DiskUpload>;
  /** Holds the files; the caller removes it. */
  dir: string;
}

/** A refused upload: the HTTP status and one line for the client. */
export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const UPLOAD_ID_PREFIX = 'upload:';
const MAX_FILES = 64;
/** The operations and map parts: a query and a small JSON object. */
const MAX_FIELD_BYTES = 1024 * 1024;

/** Keeps a file name for records and logs, never a path the client chose. */
export function uploadName(name: string): string {
  const safe = basename(String(name ?? '').replace(/\\/g, '/'))
    .replace(/[^\w.+-]/g, '_')
    .slice(0, 200);
  return safe === '' || safe === '.' || safe === '..' ? 'upload' : safe;
}

/** Sets `value` at a dotted path such as 'variables.files.1' (the spec's map). */
function setPath(target: Record<string, unknown>, path: string, value: string): boolean {
  const keys = path.split('.');
  let at: unknown = target;
  for (const k of keys.slice(0, -1)) {
    if (typeof at !== 'object' || at === null) return false;
    at = (at as Record<string, unknown>)[k];
  }
  const last = keys[keys.length - 1];
  if (typeof at !== 'object' || at === null || last === '__proto__' || !(last in (at as object))) return false;
  (at as Record<string, unknown>)[last] = value;
  return true;
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new UploadError(400, `the multipart '${what}' part is not JSON`);
  }
}

/**
 * Reads a multipart request: its `operations` and `map` parts, then its files, each streamed to
 * a file of a new temporary directory. More than `maxBytes` of files in all: UploadError 413, and
 * the directory is gone.
 */
export async function receiveUpload(req: IncomingMessage, opts: { maxBytes: number }): Promise<ReceivedUpload> {
  const dir = await mkdtemp(join(tmpdir(), 'flowlens-upload-'));
  try {
    return await parse(req, dir, opts.maxBytes);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function parse(req: IncomingMessage, dir: string, maxBytes: number): Promise<ReceivedUpload> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: MAX_FILES, fields: 2, fieldSize: MAX_FIELD_BYTES, parts: MAX_FILES + 2 } });
    } catch (err) {
      reject(new UploadError(400, `not a multipart request: ${(err as Error).message}`));
      return;
    }
    let operations: Record<string, unknown> | undefined;
    let map: Record<string, string[]> | undefined;
    const files = new Map<string, DiskUpload>();
    const writes: Promise<void>[] = [];
    let total = 0;
    let failed: Error | undefined;

    const fail = (err: Error) => {
      if (failed) return;
      failed = err;
      req.unpipe(bb);
      // Drain what the client still sends, so that the refusal reaches it; the server closes the connection after answering.
      req.resume();
      reject(err);
    };

    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) return fail(new UploadError(413, `the multipart '${name}' part is over ${MAX_FIELD_BYTES} bytes`));
      try {
        if (name === 'operations') {
          const ops = parseJson(value, name);
          if (typeof ops !== 'object' || ops === null || Array.isArray(ops))
            throw new UploadError(400, 'operations must be one GraphQL request (batches are not accepted)');
          operations = ops as Record<string, unknown>;
        } else if (name === 'map') {
          const m = parseJson(value, name);
          if (typeof m !== 'object' || m === null || Object.values(m).some((v) => !Array.isArray(v) || v.some((p) => typeof p !== 'string'))) {
            throw new UploadError(400, "the multipart 'map' part must map each file to a list of variable paths");
          }
          map = m as Record<string, string[]>;
        } else throw new UploadError(400, `unexpected multipart field '${name}'`);
      } catch (err) {
        fail(err as Error);
      }
    });

    bb.on('file', (name, stream, info) => {
      if (failed) return stream.resume();
      if (!operations || !map) {
        stream.resume();
        return fail(new UploadError(400, "the multipart 'operations' and 'map' parts must come before the files"));
      }
      if (!map[name]) {
        stream.resume();
        return fail(new UploadError(400, `file part '${name}' is not in the map`));
      }
      const id = `${UPLOAD_ID_PREFIX}${randomUUID()}`;
      const sub = join(dir, String(files.size));
      const fileName = uploadName(info.filename ?? '');
      const upload: DiskUpload = { path: join(sub, fileName), name: fileName, size: 0 };
      files.set(id, upload);
      for (const p of map[name]) {
        if (!setPath(operations, p, id)) {
          stream.resume();
          return fail(new UploadError(400, `map path '${p}' names no variable of the operation`));
        }
      }
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          total += chunk.length;
          upload.size += chunk.length;
          if (total > maxBytes) done(new UploadError(413, `the upload is over the limit of ${maxBytes} bytes`));
          else done(null, chunk);
        },
      });
      writes.push(
        mkdir(sub)
          .then(() => pipeline(stream, count, createWriteStream(upload.path)))
          .catch((err: Error) => {
            stream.resume();
            fail(err instanceof UploadError ? err : new UploadError(500, `could not save the upload: ${err.message}`));
          }),
      );
    });

    bb.on('filesLimit', () => fail(new UploadError(413, `at most ${MAX_FILES} files in one upload`)));
    bb.on('partsLimit', () => fail(new UploadError(413, 'too many parts in the multipart request')));
    bb.on('fieldsLimit', () => fail(new UploadError(400, "a multipart upload has two fields: 'operations' and 'map'")));
    bb.on('error', (err) => fail(new UploadError(400, `bad multipart request: ${(err as Error).message}`)));
    req.on('aborted', () => fail(new UploadError(400, 'the client went away during the upload')));
    bb.on('close', () => {
      void Promise.all(writes).then(() => {
        if (failed) return;
        if (!operations || !map) return fail(new UploadError(400, "a multipart upload needs the 'operations' and 'map' parts"));
        resolve({ operations, files, dir });
      });
    });
    req.pipe(bb);
  });
}
