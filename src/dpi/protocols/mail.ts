// Shared by the text mail protocols (SMTP, IMAP, POP3): a STARTTLS upgrade makes the flow the
// "S" variant, as nDPI names it (SMTPS, IMAPS, POPS); the dissector follows the flow for it.
import { startsWithUpper } from '../bytes.js';
import { isTlsRecord } from './tls.js';
import { FOLLOW, MATCH, type DpiContext, type Verdict } from '../types.js';

/** Looks for the STARTTLS command (any tag before it) or the TLS handshake that follows it. */
export function sawStartTls(ctx: DpiContext, buf: Buffer, off: number, len: number, command: string): boolean {
  if (ctx.fromClient && isTlsRecord(buf, off, len) && buf[off] === 0x16) return true;
  if (!ctx.fromClient) return false;
  const stop = Math.min(len, 32);
  for (let i = 0; i + command.length <= stop; i++) {
    if (startsWithUpper(buf, off + i, len - i, command)) return true;
  }
  return false;
}

/**
 * For a flow the dissector already identified (marked by `tag` in its details): MATCH, renamed to
 * `tlsApp`, once the STARTTLS command or the TLS handshake shows up; FOLLOW until then; null when
 * the flow is not yet identified.
 */
export function followMail(ctx: DpiContext, buf: Buffer, off: number, len: number, tag: string, command: string, tlsApp: string): Verdict | null {
  if (!ctx.hasExtra()) return null;
  const e = ctx.extra();
  if (e.info?.[tag] !== 1) return null;
  if (!sawStartTls(ctx, buf, off, len, command)) return FOLLOW;
  e.app = tlsApp;
  return MATCH;
}
