// Shared by the text mail protocols (SMTP, IMAP, POP3): a STARTTLS upgrade makes the flow the
// "S" variant, as nDPI names it (SMTPS, IMAPS, POPS); the dissector follows the flow for it, and
// for the ClientHello after it, whose server name and JA4 it records as TLS's own dissector does.
import { startsWithUpper } from '../bytes.js';
import { describeHello, helloInRecord, isTlsRecord } from './tls.js';
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
 * For a flow the dissector already identified (marked by `tag` in its details: 1, then 2 once the
 * STARTTLS command was seen): renamed to `tlsApp` at the command, MATCH at the client's
 * ClientHello (named from it when it fits its segment); FOLLOW until then; null when the flow is
 * not yet identified.
 */
export function followMail(ctx: DpiContext, buf: Buffer, off: number, len: number, tag: string, command: string, tlsApp: string): Verdict | null {
  if (!ctx.hasExtra()) return null;
  const e = ctx.extra();
  const state = e.info?.[tag];
  if (state !== 1 && state !== 2) return null;
  if (ctx.fromClient && isTlsRecord(buf, off, len) && buf[off] === 0x16) {
    e.app = tlsApp;
    const hello = helloInRecord(buf, off, len);
    if (hello > 0) describeHello(ctx, buf, off + 5, hello, 't');
    return MATCH;
  }
  if (state === 1 && sawStartTls(ctx, buf, off, len, command)) {
    e.app = tlsApp;
    e.info = { ...e.info, [tag]: 2 };
  }
  return FOLLOW;
}
