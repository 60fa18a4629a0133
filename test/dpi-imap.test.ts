// IMAP as nDPI names it (src/dpi/protocols/imap.ts). nDPI's mail_imap.c counts the IMAP commands and
// responses it recognises ("stages") and settles on IMAP at the third, fifth or seventh of them once
// a LOGIN gave a user name (or at the seventh without one); a tagged AUTHENTICATE command seen before
// that makes the flow IMAPS at once ("the authenticate phase may have multiple messages; ignore them
// since they are somehow encrypted anyway"), even on port 143 without TLS. ndpiReader 4.2 names
// curl's clear-text `imap://user:pw@host` session (AUTHENTICATE PLAIN) IMAPS for that reason.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DpiEngine } from '../src/dpi/engine.js';

function identify(lines: [boolean, string][], port = 143) {
  const engine = new DpiEngine();
  engine.reset(0, 6);
  for (const [fromClient, text] of lines) {
    if (engine.decided[0] === 1) break;
    const b = Buffer.from(text, 'latin1');
    engine.packet(0, 6, b, 0, b.length, fromClient, 50000, port, -1);
  }
  engine.label(0, 6, 50000, port);
  return [engine.appName(0), engine.confidenceName(0)];
}

const S = false;
const C = true;
/** The greeting and a CAPABILITY exchange: three lines nDPI counts. */
const OPENING: [boolean, string][] = [
  [S, '* OK IMAP4rev1 ready\r\n'],
  [C, 'A001 CAPABILITY\r\n'],
  [S, '* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\nA001 OK done\r\n'],
];

describe('IMAP and IMAPS as nDPI names them', () => {
  it('a clear-text session that authenticates with AUTHENTICATE is IMAPS (curl imap://)', () => {
    const curl: [boolean, string][] = [
      ...OPENING,
      [C, 'A002 AUTHENTICATE PLAIN\r\n'],
      [S, '+ \r\n'],
      [C, 'AHVzZXIAc2VjcmV0\r\n'],
      [S, 'A002 OK authenticated\r\n'],
      [C, 'A003 SELECT INBOX\r\n'],
    ];
    assert.deepEqual(identify(curl), ['IMAPS', 'dpi']);
    // The same picked up without the greeting, and on another port.
    assert.deepEqual(identify(curl.slice(1), 10143), ['IMAPS', 'dpi']);
  });

  it('a session that logged in with LOGIN is settled as IMAP before any AUTHENTICATE', () => {
    const login: [boolean, string][] = [...OPENING, [C, 'a2 LOGIN carol secret\r\n'], [S, 'a2 OK logged in\r\n'], [C, 'a3 AUTHENTICATE PLAIN\r\n']];
    assert.deepEqual(identify(login), ['IMAP', 'dpi']);
    // Without a user name, seven recognised lines settle it too.
    const long: [boolean, string][] = [
      ...OPENING,
      [C, 'a2 NOOP\r\n'],
      [S, 'a2 OK done\r\n'],
      [C, 'a3 NOOP\r\n'],
      [S, 'a3 OK done\r\n'],
      [C, 'a4 AUTHENTICATE PLAIN\r\n'],
    ];
    assert.deepEqual(identify(long), ['IMAP', 'dpi']);
    // A session that never authenticates stays IMAP.
    assert.deepEqual(identify(long.slice(0, 3)), ['IMAP', 'dpi']);
  });
});
