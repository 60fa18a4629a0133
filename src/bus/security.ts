// How a NatsBus proves who it is to the NATS server and checks that the server is the right one:
// NATS credentials (user and password, a token, an NKey seed or a .creds file) and TLS (the CA that
// signed the server's certificate, and the client's own certificate when the server verifies it).
import { type ConnectionOptions, credsAuthenticator, NatsError, nkeyAuthenticator, nkeys } from 'nats';

/** One way to authenticate; the server's authorization block decides what each may do. */
export type NatsAuth = { user: string; pass: string } | { token: string } | { nkeySeed: Uint8Array } | { creds: Uint8Array };

/** TLS towards the server; present (even empty) means TLS is required. */
export interface NatsTls {
  /** PEM file of the CA that signed the server's certificate (default: the system's CAs). */
  caFile?: string;
  /** PEM files of the client's certificate and key (for servers with `verify: true`). */
  certFile?: string;
  keyFile?: string;
}

export interface NatsSecurity {
  auth?: NatsAuth;
  tls?: NatsTls;
}

/** True when any of the comma-separated server URLs asks for TLS (tls://host:port). */
export function urlRequiresTls(url: string): boolean {
  return url.split(',').some((s) => /^\s*tls:\/\//i.test(s));
}

/** The part of nats.js's connect() options that NatsSecurity sets. */
export function connectSecurity(url: string, s: NatsSecurity): Partial<ConnectionOptions> {
  const out: Partial<ConnectionOptions> = {};
  const a = s.auth;
  if (a && 'user' in a) Object.assign(out, { user: a.user, pass: a.pass });
  else if (a && 'token' in a) out.token = a.token;
  else if (a && 'nkeySeed' in a) out.authenticator = nkeyAuthenticator(a.nkeySeed);
  else if (a && 'creds' in a) out.authenticator = credsAuthenticator(a.creds);
  if (s.tls || urlRequiresTls(url)) {
    const tls: NonNullable<ConnectionOptions['tls']> = {};
    if (s.tls?.caFile) tls.caFile = s.tls.caFile;
    if (s.tls?.certFile) tls.certFile = s.tls.certFile;
    if (s.tls?.keyFile) tls.keyFile = s.tls.keyFile;
    out.tls = tls;
  }
  return out;
}

/** An NKey user seed (SU...) from a seed file's text; throws with the reason when it is not one. */
export function parseNkeySeed(text: string): Uint8Array {
  const seed = text.trim();
  if (!seed.startsWith('SU')) throw new Error('not an NKey user seed (a line starting with SU)');
  try {
    nkeys.fromSeed(new TextEncoder().encode(seed));
  } catch (err) {
    throw new Error(`not a valid NKey seed (${(err as Error).message})`);
  }
  return new TextEncoder().encode(seed);
}

/** Checks that a .creds file's text holds a user JWT and an NKey seed, as `nsc` writes them. */
export function parseCreds(text: string): Uint8Array {
  const blocks = [...text.matchAll(/-{3,}[^\n]*-{3,}\n([\s\S]+?)\n\s*-{3,}[^\n]*-{3,}/g)].map((m) => m[1].trim());
  if (blocks.length < 2 || !blocks[0].startsWith('ey')) throw new Error('not a NATS .creds file (a USER JWT block and a USER NKEY SEED block)');
  parseNkeySeed(blocks[1]);
  return new TextEncoder().encode(text);
}

export type ConnectFailure = 'auth' | 'tls' | 'unreachable';

/** Node's certificate verification errors (tls.connect's err.code). */
const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ERR_TLS|ERR_SSL|HOSTNAME|ALTNAME/i;

/**
 * What a refused connection says about the cause: credentials, TLS, or the server is not there.
 * Over TLS 1.3 a server that refuses the client's certificate does so after the client's side of
 * the handshake is done, and nats.js then only sees a timeout: with TLS, a timeout counts as TLS.
 */
export function classifyConnectError(err: unknown, tls = false): ConnectFailure {
  const e = err as Partial<NatsError> & { code?: string; message?: string; chainedError?: Error & { code?: string } };
  if (err instanceof NatsError && (err.isAuthError() || err.isAuthTimeout())) return 'auth';
  if (/authorization violation|authentication/i.test(e.message ?? '')) return 'auth';
  if (e.code === 'tls' || e.code === 'SERVER_OPTION_NA' || (tls && e.code === 'TIMEOUT')) return 'tls';
  const chained = e.chainedError;
  if (CERT_ERRORS.test(String(e.code ?? '')) || CERT_ERRORS.test(String(chained?.code ?? ''))) return 'tls';
  if (/certificate|tls|ssl|handshake/i.test(`${e.message ?? ''} ${chained?.message ?? ''}`)) return 'tls';
  return 'unreachable';
}
