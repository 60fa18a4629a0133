// The client's only way to the server: GraphQL queries over fetch (POST /graphql) and
// subscriptions over graphql-ws on the same path. The WebSocket reconnects by itself (forever,
// at most a few seconds apart) and resubscribes; `connection` tells the UI where it stands, and
// `connection.generation` grows at each (re)connect so pages can reload what they show.
// Documents are typed (./graphql): their result and variable types come from the schema.
import { type DocumentNode, print } from '@0no-co/graphql.web';
import { createClient, type Client } from 'graphql-ws';
import type { TadaDocumentNode } from './graphql';

export type ConnectionStatus = 'connecting' | 'online' | 'offline' | 'unauthorized';

const TOKEN_KEY = 'flowlens.token';

function storedToken(): string {
  try {
    return localStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export const connection = $state({
  status: 'connecting' as ConnectionStatus,
  /** When the status last changed (ms). */
  since: Date.now(),
  /** Grows at every successful (re)connect. */
  generation: 0,
  /** Connection attempts since the last success. */
  retries: 0,
  token: storedToken(),
});

function setStatus(status: ConnectionStatus): void {
  if (connection.status !== status) {
    connection.status = status;
    connection.since = Date.now();
  }
}

export function setToken(token: string): void {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // private mode: the token lasts for this page only
  }
  // The WebSocket sends the token once, when it connects: start over with the new one.
  location.reload();
}

export class GraphQLRequestError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

function authHeaders(): Record<string, string> {
  return connection.token ? { authorization: `Bearer ${connection.token}` } : {};
}

export const GRAPHQL_URL = '/graphql';

/** A document's text, printed once. */
const texts = new WeakMap<DocumentNode, string>();
function textOf(doc: DocumentNode): string {
  let text = texts.get(doc);
  if (text === undefined) texts.set(doc, (text = print(doc)));
  return text;
}

/** The variables may be left out when the document requires none. */
type QueryArgs<V> = Record<string, never> extends V ? [variables?: V, signal?: AbortSignal] : [variables: V, signal?: AbortSignal];

/** Runs a query or mutation; throws GraphQLRequestError with the server's messages. */
export async function query<T, V>(doc: TadaDocumentNode<T, V>, ...args: QueryArgs<V>): Promise<T> {
  const [variables, signal] = args as [V | undefined, AbortSignal | undefined];
  const text = textOf(doc);
  let res: Response;
  try {
    res = await fetch(GRAPHQL_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json', ...authHeaders() },
      body: JSON.stringify({ query: text, variables: variables ?? {} }),
      signal,
    });
  } catch (err) {
    if ((err as Error).name === 'AbortError') throw err;
    throw new GraphQLRequestError('the server cannot be reached');
  }
  return readResponse<T>(res.status, await res.text());
}

function readResponse<T>(status: number, text: string): T {
  if (status === 401) {
    setStatus('unauthorized');
    throw new GraphQLRequestError('the server wants a token', 401);
  }
  let body: { data?: T; errors?: { message: string }[] };
  try {
    body = JSON.parse(text);
  } catch {
    throw new GraphQLRequestError(`HTTP ${status}: ${text.slice(0, 120)}`, status);
  }
  if (body.errors?.length) throw new GraphQLRequestError(body.errors.map((e) => e.message).join('; '), status);
  if (body.data === undefined) throw new GraphQLRequestError(`HTTP ${status} without data`, status);
  return body.data;
}

/**
 * GETs a file the server serves beside GraphQL (a flow's or an anomaly's /pcap) with the same
 * token; its name is the one the server gives (Content-Disposition), else `fallbackName`.
 * Throws GraphQLRequestError with the server's reason (e.g. the packets were evicted).
 */
export async function fetchFile(url: string, fallbackName: string): Promise<{ blob: Blob; name: string }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: authHeaders() });
  } catch {
    throw new GraphQLRequestError('the server cannot be reached');
  }
  if (!res.ok) {
    const text = await res.text();
    if (res.status === 401) readResponse(401, text);
    let message = `HTTP ${res.status}`;
    try {
      message = (JSON.parse(text) as { errors?: { message: string }[] }).errors?.[0]?.message ?? message;
    } catch {
      // not the server's JSON: the status says it
    }
    throw new GraphQLRequestError(message, res.status);
  }
  const disposition = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '');
  return { blob: await res.blob(), name: disposition?.[1] ?? fallbackName };
}

/**
 * Uploads files through the multipart request spec with the header the server demands; the
 * browser sends a Content-Length for FormData bodies. XMLHttpRequest (not fetch) for upload progress.
 */
export function upload<T, V>(
  doc: TadaDocumentNode<T, V>,
  fileVariable: keyof V & string,
  file: File,
  onProgress: (sent: number, total: number) => void,
): Promise<T> {
  const form = new FormData();
  form.append('operations', JSON.stringify({ query: textOf(doc), variables: { [fileVariable]: null } }));
  form.append('map', JSON.stringify({ 0: [`variables.${fileVariable}`] }));
  form.append('0', file, file.name);
  return new Promise<T>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', GRAPHQL_URL);
    xhr.setRequestHeader('x-flowlens-upload', '1');
    xhr.setRequestHeader('accept', 'application/graphql-response+json, application/json');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new GraphQLRequestError('the upload failed: the server cannot be reached'));
    xhr.onload = () => {
      try {
        resolve(readResponse<T>(xhr.status, xhr.responseText));
      } catch (err) {
        reject(err);
      }
    };
    xhr.send(form);
  });
}

let client: Client | undefined;

const closeCode = (e: unknown): number | undefined => (e as { code?: number } | undefined)?.code;

function wsUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${GRAPHQL_URL}`;
}

/** Delay before reconnect attempt `n` (0-based): quick at first, never more than ~3 s. */
export function retryDelayMs(n: number): number {
  return Math.min(250 * 2 ** n, 3000);
}

function ws(): Client {
  if (client) return client;
  client = createClient({
    url: wsUrl(),
    lazy: false,
    keepAlive: 10_000,
    retryAttempts: Infinity,
    // Forever, except when the server refuses the token (4403): that needs the user.
    shouldRetry: (e) => closeCode(e) !== 4403,
    retryWait: (n) => new Promise((r) => setTimeout(r, retryDelayMs(n) + Math.random() * 250)),
    connectionParams: () => (connection.token ? { token: connection.token } : {}),
    onNonLazyError: (e) => setStatus(closeCode(e) === 4403 ? 'unauthorized' : 'offline'),
    on: {
      connecting: () => {
        if (connection.status !== 'unauthorized') setStatus(connection.generation === 0 ? 'connecting' : 'offline');
      },
      connected: () => {
        connection.retries = 0;
        connection.generation += 1;
        setStatus('online');
      },
      closed: (e) => {
        connection.retries += 1;
        setStatus(closeCode(e) === 4403 ? 'unauthorized' : 'offline');
      },
    },
  });
  return client;
}

/** Starts the WebSocket (the connection indicator follows it). */
export function connect(): void {
  ws();
}

/**
 * Subscribes; `onData` gets each event's data. Survives reconnects (graphql-ws resubscribes).
 * Returns the unsubscribe function.
 */
export function subscribe<T, V>(doc: TadaDocumentNode<T, V>, variables: V, onData: (data: T) => void, onError?: (message: string) => void): () => void {
  return ws().subscribe<T>(
    { query: textOf(doc), variables: variables as Record<string, unknown> },
    {
      next: (r) => {
        if (r.data) onData(r.data as T);
        if (r.errors?.length) onError?.(r.errors.map((e) => e.message).join('; '));
      },
      error: (err) => {
        const message = Array.isArray(err)
          ? err.map((e: { message: string }) => e.message).join('; ')
          : err instanceof Error
            ? err.message
            : 'subscription closed';
        onError?.(message);
      },
      complete: () => {},
    },
  );
}
