// Flow risks, as nDPI names them (ndpi_risk2str), where flowlens finds the same thing; two of its
// own where nDPI has no name (a certificate not yet valid, a weak certificate key or signature).
// Dissectors set bits in their flow's FlowExtra.risks; the engine adds those that depend on the
// port or the flow's time (DpiEngine.risks) and writes the names, comma-separated.

export const RISK_KNOWN_PROTO_NON_STD_PORT = 1 << 0;
export const RISK_CLEAR_TEXT_CREDENTIALS = 1 << 1;
export const RISK_TLS_OBSOLETE_VERSION = 1 << 2;
export const RISK_SSH_OBSOLETE_CLIENT = 1 << 3;
export const RISK_SSH_OBSOLETE_SERVER = 1 << 4;
export const RISK_TLS_CERT_EXPIRED = 1 << 5;
export const RISK_TLS_CERT_NOT_YET_VALID = 1 << 6;
export const RISK_TLS_SELF_SIGNED = 1 << 7;
export const RISK_TLS_CERT_MISMATCH = 1 << 8;
export const RISK_TLS_WEAK_CERT = 1 << 9;

/** Names by bit position. */
export const RISK_NAMES = [
  'Known Proto on Non Std Port',
  'Clear-Text Credentials',
  'Obsolete TLS (v1.1 or older)',
  'SSH Obsolete Cli Vers/Cipher',
  'SSH Obsolete Ser Vers/Cipher',
  'TLS Cert Expired',
  'TLS Cert Not Yet Valid',
  'Self-signed Cert',
  'TLS Cert Mismatch',
  'TLS Weak Cert Key or Signature',
] as const;

/**
 * The ports nDPI expects a protocol on (its default ports, not every port flowlens's port guess
 * uses: HTTP on 8080 is "Known Proto on Non Std Port" to nDPI). Only protocols listed here are
 * judged: most peer-to-peer and media protocols live on any port.
 */
export const STANDARD_PORTS: Readonly<Record<string, readonly number[]>> = {
  HTTP: [80],
  HTTP_Connect: [8080, 3128],
  // DNS over TLS is TLS to flowlens (nDPI names it DoH_DoT, at home on 853).
  TLS: [443, 853],
  SSH: [22],
  Telnet: [23],
  FTP_CONTROL: [21],
  SMTP: [25, 587],
  // TLS after STARTTLS keeps the plain protocol's port.
  SMTPS: [465, 25, 587],
  POP3: [110],
  POPS: [995, 110],
  IMAP: [143],
  IMAPS: [993, 143],
  DNS: [53],
  OpenVPN: [1194],
  RTSP: [554],
  MQTT: [1883, 8883],
  LDAP: [389],
  WireGuard: [51820],
  Syslog: [514],
  SIP: [5060, 5061],
  RDP: [3389],
  MySQL: [3306],
  PostgreSQL: [5432],
  Redis: [6379],
  // nDPI's defaults, narrower than the ports flowlens guesses these by: STUN on 3479 or 19302 and
  // BitTorrent on 6881 are "non standard" to it, as is QUIC on 8443 (784 and 853 are DNS over QUIC).
  STUN: [3478],
  BitTorrent: [51413, 53646, 6771],
  QUIC: [443, 784, 853],
};

const textOf = new Map<number, string>();

/** 'Self-signed Cert,TLS Cert Mismatch': the names of the mask's bits, in RISK_NAMES order ('' for none); one string per mask, reused. */
export function riskText(mask: number): string {
  if (mask === 0) return '';
  let s = textOf.get(mask);
  if (s === undefined) {
    s = RISK_NAMES.filter((_, i) => (mask & (1 << i)) !== 0).join(',');
    textOf.set(mask, s);
  }
  return s;
}
