// Client side of imports into a running server (`flowlens import FILE --server URL`): one
// multipart request per the GraphQL multipart request spec
// (https://github.com/jaydenseric/graphql-multipart-request-spec), sent with node's fetch.
import { openAsBlob } from 'node:fs';
import { basename } from 'node:path';
import type { ImportSummary } from '../capture/import.js';

/**
 * Multipart POSTs are "simple" requests a browser sends cross-site without a CORS preflight;
 * the server requires this header (which forces a preflight) on them, so a web page cannot
 * upload into a server on the user's machine. Any value will do.
 */
export const UPLOAD_HEADER = 'x-flowlens-upload';

const SUMMARY_FIELDS = `
  state error
  summary {
    packets bytes flows hosts nonIp fragments malformed
    malformedByReason { reason count }
    files { name format packets bytes malformed linkTypes error warning }
    seconds packetsPerSecond interrupted anomalies firstPacket lastPacket
  }`;

const IMPORT_MUTATION = `mutation Import($files: [File!]!, $node: String) { importCaptures(files: $files, node: $node) { ${SUMMARY_FIELDS} } }`;

interface RemoteSummary extends Omit<ImportSummary, 'malformedByReason' | 'files' | 'firstPacket' | 'lastPacket'> {
  malformedByReason: { reason: string; count: number }[];
  files: {
    name: string;
    format: string;
    packets: number;
    bytes: number;
    malformed: number;
    linkTypes: number[];
    error: string | null;
    warning: string | null;
  }[];
  firstPacket: string | null;
  lastPacket: string | null;
}

export class RemoteImportError extends Error {}

/** The server URL as given (host:port, http://host:port or …/graphql) → the GraphQL endpoint. */
export function graphqlUrl(server: string): string {
  const url = new URL(/^https?:\/\//.test(server) ? server : `http://${server}`);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/graphql';
  return url.toString();
}

/**
 * POSTs a GraphQL request and returns its data. Any failure (no connection, no GraphQL answer,
 * errors) is one error made by `fail` with a message for the user; a 401 says the token was refused.
 */
export async function postGraphql<T>(
  url: string,
  init: { body: string | FormData; headers: Record<string, string> },
  fail: (message: string) => Error,
): Promise<T | undefined> {
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', ...init });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw fail(`cannot reach ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  const text = await res.text();
  let body: { data?: T | null; errors?: { message: string }[] };
  try {
    body = JSON.parse(text);
  } catch {
    throw fail(`${url} answered HTTP ${res.status} without a GraphQL response: ${text.slice(0, 200)}`);
  }
  if (body.errors?.length) {
    const prefix = res.status === 401 ? 'the server refused the token (--token, FLOWLENS_TOKEN): ' : '';
    throw fail(prefix + body.errors.map((e) => e.message).join('; '));
  }
  return body.data ?? undefined;
}

export async function importThroughServer(files: string[], o: { server: string; token?: string; node?: string }): Promise<ImportSummary> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: IMPORT_MUTATION, variables: { files: files.map(() => null), node: o.node || null } }));
  form.append('map', JSON.stringify(Object.fromEntries(files.map((_, i) => [String(i), [`variables.files.${i}`]]))));
  for (const [i, path] of files.entries()) {
    let blob: Blob;
    try {
      // A file-backed Blob: the upload is streamed from disk, not read into memory first.
      blob = await openAsBlob(path);
    } catch (err) {
      throw new RemoteImportError(`${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
    form.append(String(i), blob, basename(path));
  }

  const url = graphqlUrl(o.server);
  const headers: Record<string, string> = { [UPLOAD_HEADER]: '1', accept: 'application/graphql-response+json, application/json' };
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  const data = await postGraphql<{ importCaptures?: { state: string; error: string | null; summary: RemoteSummary | null } | null }>(
    url,
    { body: form, headers },
    (m) => new RemoteImportError(m),
  );
  const job = data?.importCaptures;
  if (!job?.summary) throw new RemoteImportError(`import failed on the server: ${job?.error ?? 'no summary'}`);
  return fromRemote(job.summary, files);
}

/** The summary as a local import gives it, files named by the paths given on the command line. */
function fromRemote(s: RemoteSummary, paths: string[]): ImportSummary {
  return {
    ...s,
    malformedByReason: Object.fromEntries(s.malformedByReason.map((r) => [r.reason, r.count])),
    files: s.files.map((f, i) => ({
      path: paths[i] ?? f.name,
      format: f.format,
      packets: f.packets,
      bytes: f.bytes,
      malformed: f.malformed,
      linkTypes: f.linkTypes,
      ...(f.error ? { error: f.error } : {}),
      ...(f.warning ? { warning: f.warning } : {}),
    })),
    firstPacket: s.firstPacket ?? '',
    lastPacket: s.lastPacket ?? '',
  };
}
