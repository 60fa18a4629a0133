// Flow risks against nDPI's, flow by flow, over the nDPI corpus (../shared/corpus/ndpi): each
// capture imported through the library API, each flow's risks compared with the risks of nDPI's
// listing line, for the risks both name (test/dpi/risks-eval.ts). ~7 s.
import assert from 'node:assert/strict';
import { sharedCorpusMissing } from './helpers/shared.js';
import { describe, it } from 'node:test';
import { CORPUS } from './dpi/eval.js';
import { evaluateRisks, reportRisks } from './dpi/risks-eval.js';

describe('flow risks on the nDPI corpus, flow by flow against its listings', { skip: sharedCorpusMissing('dpi-risks-corpus', CORPUS) }, () => {
  it('agree where both can tell (figures: node --import tsx test/dpi/risks-eval.ts)', async () => {
    const r = await evaluateRisks();
    const f = r.perRisk;
    const where = reportRisks(r);
    assert.ok(r.flows > 5000, where);
    // Certificates: every expired (or not yet valid at the capture's time), self-signed and
    // mismatched certificate nDPI reports, and one more self-signed one (anyconnect-vpn.pcap:
    // subject = issuer, nDPI reports "About To Expire" instead).
    assert.deepEqual(f['TLS Cert Expired'], { both: 5, ndpiOnly: 0, oursOnly: 0 }, where);
    assert.deepEqual(f['Self-signed Cert'], { both: 5, ndpiOnly: 0, oursOnly: 1 }, where);
    assert.deepEqual(f['TLS Cert Mismatch'], { both: 1, ndpiOnly: 0, oursOnly: 0 }, where);
    // SSH: ssh.pcap's obsolete ciphers (arcfour, 3des-cbc, ...) offered by both sides of one flow and the server of another.
    assert.deepEqual(f['SSH Obsolete Cli Vers/Cipher'], { both: 1, ndpiOnly: 0, oursOnly: 0 }, where);
    assert.deepEqual(f['SSH Obsolete Ser Vers/Cipher'], { both: 2, ndpiOnly: 0, oursOnly: 0 }, where);
    // Clear-text credentials: FTP, POP3, HTTP Basic. Missed: IRC (no IRC dissector), a failed FTP
    // login and an FTP flow nDPI matched by port in a fuzzed capture.
    assert.deepEqual(f['Clear-Text Credentials'], { both: 4, ndpiOnly: 3, oursOnly: 0 }, where);
    // Obsolete TLS (DTLS 1.0 and OpenSSL's 0x0100 included): every one nDPI reports; the extras are
    // alexa-app.pcapng's resumed sessions, whose ServerHello is TLS 1.0 on the wire (tshark:
    // handshake version 0x0301) where nDPI prints TLSv1.2, and dtls_certificate_fragments.pcap's
    // server answering DTLS 1.0 (0xfeff) where nDPI prints DTLSv1.2.
    assert.deepEqual(f['Obsolete TLS (v1.1 or older)'], { both: 64, ndpiOnly: 0, oursOnly: 48 }, where);
    // Non-standard ports: the protocols flowlens judges (risks.ts STANDARD_PORTS); nDPI judges
    // every protocol it knows (TINC, SOME/IP, ...). Extras are flows flowlens names otherwise
    // (STUN that nDPI calls DTLS once the handshake starts; RDP for TPKT on port 102).
    assert.ok(f['Known Proto on Non Std Port']!.both >= 119 && f['Known Proto on Non Std Port']!.oursOnly <= 8, where);
  });
});
