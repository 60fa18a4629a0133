// The ILP/HTTP request itself: a POST of serialised rows to QuestDB's /write endpoint, as the
// official client's HttpTransport sends it (same path, precision, authentication, TLS options and
// timeout rule), with one difference that is the reason this module exists: a refusal is reported
// with the server's own explanation. The client's transport (@questdb/nodejs-client 4.2.0) destroys
// the request as soon as a non-204 status arrives, before the response body is read, so its error
// always ends in "error=" with nothing after it; QuestDB says what is wrong with a line in that
// body (a JSON object with code, message, line and errorId), and the outage spool keeps that
// text beside a batch it sets aside (rejected/*.reason.txt).
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { SenderOptions } from '@questdb/nodejs-client';
import type { SendError } from './spool.js';

/** Statuses worth retrying within retry_timeout (the client's RETRIABLE_STATUS_CODES). */
const RETRYABLE = new Set([500, 503, 504, 507, 509, 523, 524, 529, 599]);
/** The client's defaults (index.mjs: DEFAULT_REQUEST_TIMEOUT, DEFAULT_RETRY_TIMEOUT, DEFAULT_REQUEST_MIN_THROUGHPUT). */
const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
const DEFAULT_RETRY_TIMEOUT_MS = 10_000;
const DEFAULT_MIN_THROUGHPUT = 102_400;
/** The longest server explanation kept in an error message. */
const MAX_REASON_CHARS = 2_000;

export class IlpHttpTransport {
  private readonly secure: boolean;
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;
  private readonly authorization: string | undefined;
  private readonly requestTimeoutMs: number;
  private readonly retryTimeoutMs: number;
  private readonly minThroughput: number;
  private readonly tls: { rejectUnauthorized: boolean; ca: Buffer | undefined };

  constructor(options: SenderOptions) {
    if (options.protocol !== 'http' && options.protocol !== 'https') throw new Error(`ILP over HTTP needs http:: or https:: (got ${options.protocol}::)`);
    this.secure = options.protocol === 'https';
    this.host = options.host ?? 'localhost';
    this.port = options.port ?? 9000;
    if (options.token) this.authorization = `Bearer ${options.token}`;
    else if (options.username && options.password) this.authorization = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
    this.requestTimeoutMs = options.request_timeout ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.retryTimeoutMs = options.retry_timeout ?? DEFAULT_RETRY_TIMEOUT_MS;
    this.minThroughput = options.request_min_throughput ?? DEFAULT_MIN_THROUGHPUT;
    this.tls = { rejectUnauthorized: options.tls_verify ?? true, ca: options.tls_ca ? readFileSync(options.tls_ca) : undefined };
    const agentOptions = { keepAlive: true, maxSockets: 16, timeout: 60_000 };
    this.agent = this.secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
  }

  /** How long one attempt at `bytes` may take: the client's rule, request_timeout plus the body at the minimum throughput. */
  attemptTimeoutMs(bytes: number): number {
    return this.requestTimeoutMs + Math.ceil((bytes / this.minThroughput) * 1000);
  }

  /** The longest a send() of `bytes` can take, retries included (a guard for callers). */
  sendBudgetMs(bytes: number): number {
    return this.retryTimeoutMs + 2 * this.attemptTimeoutMs(bytes) + 5_000;
  }

  /** Sends the body; retries retryable answers and timeouts until retry_timeout has passed. */
  async send(body: Buffer): Promise<void> {
    const began = Date.now();
    let pause = 10;
    for (;;) {
      try {
        await this.attempt(body);
        return;
      } catch (e) {
        const err = e as SendError;
        const retryable = err.status !== undefined && RETRYABLE.has(err.status);
        if (!retryable || this.retryTimeoutMs <= 0 || Date.now() - began > this.retryTimeoutMs) throw err;
        await new Promise((r) => setTimeout(r, pause));
        pause = Math.min(pause * 2, 1000);
      }
    }
  }

  private attempt(body: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const fail = (message: string, status?: number) => {
        const err = new Error(message) as SendError;
        if (status !== undefined) err.status = status;
        reject(err);
      };
      const request = this.secure ? https.request : http.request;
      const req = request(
        {
          hostname: this.host,
          port: this.port,
          agent: this.agent,
          path: '/write?precision=n',
          method: 'POST',
          timeout: this.attemptTimeoutMs(body.length),
          headers: {
            'Content-Type': 'text/plain; charset=utf-8',
            'Content-Length': body.length,
            ...(this.authorization ? { Authorization: this.authorization } : {}),
          },
          ...(this.secure ? this.tls : {}),
        },
        (res) => {
          const status = res.statusCode ?? 0;
          const chunks: Buffer[] = [];
          let kept = 0;
          res.on('data', (c: Buffer) => {
            if (kept < MAX_REASON_CHARS) chunks.push(c);
            kept += c.length;
          });
          res.on('error', (err) => fail(`ILP response failed: ${err.message}`, status));
          res.on('end', () => {
            if (status === 204 || status === 200) return resolve();
            const reason = Buffer.concat(chunks).toString('utf8').slice(0, MAX_REASON_CHARS).trim();
            fail(`HTTP request failed, statusCode=${status}, error=${reason}`, status);
          });
        },
      );
      // 524 marks a timeout as retryable, as the client does.
      req.on('timeout', () => req.destroy(Object.assign(new Error('ILP request timed out: no answer from QuestDB in time'), { status: 524 })));
      req.on('error', (err: SendError) => fail(err.message, err.status));
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
