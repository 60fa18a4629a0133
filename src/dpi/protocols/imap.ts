// IMAP (RFC 9051): the server greets "* OK ... IMAP..." (or "* PREAUTH"), the client sends tagged
// commands ("a1 CAPABILITY", "a1 LOGIN"). A STARTTLS upgrade makes it IMAPS, as nDPI names it.
//
// nDPI (mail_imap.c) also names a clear-text session IMAPS when the client sends a tagged
// AUTHENTICATE before nDPI settled on IMAP: it counts the commands and responses it recognises
// ("stages") and settles at the third, fifth or seventh once a LOGIN gave a user name, or at the
// seventh without one; an AUTHENTICATE before that is IMAPS at once ("the authenticate phase may
// have multiple messages... somehow encrypted anyway"). The same count is kept here for that rule.
import { lineEnd, startsWith, startsWithUpper } from '../bytes.js';
import { RISK_CLEAR_TEXT_CREDENTIALS } from '../risks.js';
import { followMail } from './mail.js';
import { FOLLOW, MATCH, MORE, NO, TRANSPORT_TCP, type Dissector, type DpiContext, type Verdict } from '../types.js';

const COMMANDS = ['CAPABILITY', 'LOGIN ', 'AUTHENTICATE ', 'STARTTLS', 'NOOP', 'ID '];

/** Whether buf[off..] is a tagged command, and which (an index into COMMANDS, -1 when not). */
function taggedCommand(buf: Buffer, off: number, len: number): number {
  // A tag is a short run of letters and digits, then a space and a known command.
  let i = 0;
  while (
    i < len &&
    i < 16 &&
    ((buf[off + i] >= 0x30 && buf[off + i] <= 0x39) || ((buf[off + i] | 0x20) >= 0x61 && (buf[off + i] | 0x20) <= 0x7a) || buf[off + i] === 0x2e)
  )
    i++;
  if (i === 0 || i >= len || buf[off + i] !== 0x20) return -1;
  for (let c = 0; c < COMMANDS.length; c++) if (startsWithUpper(buf, off + i + 1, len - i - 1, COMMANDS[c])) return c;
  return -1;
}

const LOGIN = COMMANDS.indexOf('LOGIN ');

/** The verbs nDPI counts as stages, each with the length it needs after it (its `command_start + n < len` tests). */
const STAGE_VERBS: readonly [string, number][] = [
  ['OK ', 3],
  ['UID', 3],
  ['CAPABILITY', 10],
  ['STARTTLS', 8],
  ['LOGIN', 5],
  ['FETCH', 5],
  ['FLAGS', 5],
  ['CHECK', 5],
  ['STORE', 5],
  ['AUTHENTICATE', 12],
  ['NAMESPACE', 9],
  ['LSUB', 4],
  ['LIST', 4],
  ['NOOP', 4],
  ['IDLE', 4],
  ['SELECT', 6],
  ['EXISTS', 6],
  ['APPEND', 6],
];
const AUTHENTICATE = 'AUTHENTICATE';

/**
 * The verb nDPI recognises in a payload that ends a line: after a tag (letters, digits, '*', '.')
 * and an optional message number ("* 1 EXISTS"), or a bare DONE; '' when none.
 */
function stageVerb(buf: Buffer, off: number, len: number): string {
  if (len < 4 || buf[off + len - 2] !== 0x0d || buf[off + len - 1] !== 0x0a) return '';
  if (len === 6 && startsWithUpper(buf, off, len, 'DONE')) return 'DONE';
  const tagChar = (c: number) => (c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) || c === 0x2a || c === 0x2e;
  let i = 0;
  while (i < 20 && i < len && !(i > 0 && buf[off + i] === 0x20)) {
    if (!tagChar(buf[off + i])) return '';
    i++;
  }
  if (i === 0 || i >= 20 || i >= len - 1) return '';
  let start = i + 1;
  if (buf[off + start] >= 0x30 && buf[off + start] <= 0x39) {
    let j = start;
    while (j < 20 && j < len && buf[off + j] !== 0x20) {
      if (buf[off + j] < 0x30 || buf[off + j] > 0x39) return '';
      j++;
    }
    if (j >= 20 || j >= len - 1) return '';
    start = j + 1;
  }
  for (const [verb, need] of STAGE_VERBS) if (start + need < len && startsWithUpper(buf, off + start, len - start, verb)) return verb;
  return '';
}

/** nDPI's count for the flow: recognised lines, whether a LOGIN gave a user name, whether it settled on IMAP. */
interface Stages {
  stage: number;
  user: boolean;
  settled: boolean;
}

/** Counts this payload as nDPI would; true when it is an AUTHENTICATE that makes the flow IMAPS. */
function countStage(ctx: DpiContext, buf: Buffer, off: number, len: number): boolean {
  let s = ctx.state() as Stages | null;
  if (s?.settled) return false;
  const verb = stageVerb(buf, off, len);
  if (verb === '') return false;
  if (s === null) {
    s = { stage: 0, user: false, settled: false };
    ctx.setState(s);
  }
  s.stage++;
  if (verb === AUTHENTICATE) return true;
  if (
    verb === 'LOGIN' &&
    /\S/.test(
      buf
        .toString('latin1', off, off + len)
        .replace(/^\S+ (\d+ )?LOGIN/i, '')
        .replace(/["\r\n]/g, ' '),
    )
  )
    s.user = true;
  if ((s.stage === 3 || s.stage === 5 || s.stage === 7) && (s.user || s.stage >= 7)) s.settled = true;
  return false;
}

function inspect(ctx: DpiContext, buf: Buffer, off: number, len: number): Verdict {
  if (countStage(ctx, buf, off, len) && !(ctx.hasExtra() && ctx.extra().info?.imap === 2)) {
    ctx.extra().app = 'IMAPS';
    return MATCH;
  }
  const command = ctx.fromClient ? taggedCommand(buf, off, len) : -1;
  // LOGIN carries the password in clear (before any STARTTLS: once it was seen, TLS follows).
  if (command === LOGIN && !(ctx.hasExtra() && ctx.extra().info?.imap === 2)) ctx.extra().risks |= RISK_CLEAR_TEXT_CREDENTIALS;
  const followed = followMail(ctx, buf, off, len, 'imap', 'STARTTLS', 'IMAPS');
  if (followed !== null) return followed;
  let yes = false;
  if (!ctx.fromClient && (startsWith(buf, off, len, '* OK') || startsWith(buf, off, len, '* PREAUTH'))) {
    const le = lineEnd(buf, off, Math.min(off + len, off + 512));
    yes = ctx.serverPort === 143 || (le > 0 && buf.toString('latin1', off, le).toUpperCase().includes('IMAP'));
  } else if (command >= 0) yes = true;
  if (!yes) return ctx.dirPackets >= 2 ? NO : MORE;
  ctx.extra().info = { imap: 1 };
  return FOLLOW;
}

export const imap: Dissector = { app: 'IMAP', transports: TRANSPORT_TCP, ports: [143], inspect };
