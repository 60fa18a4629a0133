// The server certificate of a TLS (up to 1.2) handshake, where it travels in clear: subject,
// SANs, issuer, validity, key and signature algorithm, and what is wrong with it. Parsed by
// node:crypto's X509Certificate (OpenSSL), once per distinct certificate and server name (a server's
// certificate comes again in each of its flows, and OpenSSL's parse was ~5% of an import's CPU
// profile on the benchmark capture); only the signature algorithm, which it does not expose, is read
// from the DER here.
import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

export interface CertificateFacts {
  subject: string;
  issuer: string;
  /** subjectAltName as OpenSSL prints it: 'DNS:a.example, DNS:*.b.example, IP Address:10.0.0.1'. */
  san: string;
  /** Validity (ms since the epoch). */
  notBefore: number;
  notAfter: number;
  /** 'rsa 2048', 'ec 256', 'ed25519'. */
  key: string;
  /** Signature algorithm name (or its OID when not a common one). */
  signature: string;
  selfSigned: boolean;
  /** Why the key or signature is weak ('' when not): RSA or DSA below 2048 bits, EC below 224, MD5 or SHA-1 signatures. */
  weak: string;
  /** Whether the server name (SNI) is covered by the SANs; true when there is nothing to compare (see nameCovered). */
  nameCovered: boolean;
}

const SIGNATURE_OIDS: Record<string, string> = {
  '1.2.840.113549.1.1.4': 'md5WithRSAEncryption',
  '1.2.840.113549.1.1.5': 'sha1WithRSAEncryption',
  '1.2.840.113549.1.1.10': 'rsassaPss',
  '1.2.840.113549.1.1.11': 'sha256WithRSAEncryption',
  '1.2.840.113549.1.1.12': 'sha384WithRSAEncryption',
  '1.2.840.113549.1.1.13': 'sha512WithRSAEncryption',
  '1.2.840.10040.4.3': 'dsaWithSHA1',
  '1.2.840.10045.4.1': 'ecdsaWithSHA1',
  '1.2.840.10045.4.3.2': 'ecdsaWithSHA256',
  '1.2.840.10045.4.3.3': 'ecdsaWithSHA384',
  '1.2.840.10045.4.3.4': 'ecdsaWithSHA512',
  '1.3.101.112': 'ed25519',
  '1.3.101.113': 'ed448',
};

const CURVE_BITS: Record<string, number> = {
  prime192v1: 192,
  secp192k1: 192,
  secp224r1: 224,
  secp224k1: 224,
  prime256v1: 256,
  secp256k1: 256,
  secp384r1: 384,
  secp521r1: 521,
};

/** A DER element's content start and length at p, or null. */
function derElement(der: Buffer, p: number): { start: number; length: number } | null {
  if (p + 2 > der.length) return null;
  let length = der[p + 1];
  let start = p + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 3 || start + n > der.length) return null;
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[start + i];
    start += n;
  }
  return start + length <= der.length ? { start, length } : null;
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID, ... }, signature }. */
export function signatureOid(der: Buffer): string {
  const cert = derElement(der, 0);
  if (cert === null || der[0] !== 0x30) return '';
  const tbs = derElement(der, cert.start);
  if (tbs === null) return '';
  const algAt = tbs.start + tbs.length;
  const alg = derElement(der, algAt);
  if (alg === null || der[algAt] !== 0x30 || der[alg.start] !== 0x06) return '';
  const oid = derElement(der, alg.start);
  if (oid === null || oid.length === 0) return '';
  const parts: number[] = [Math.floor(der[oid.start] / 40), der[oid.start] % 40];
  let v = 0;
  for (let i = oid.start + 1; i < oid.start + oid.length; i++) {
    v = v * 128 + (der[i] & 0x7f);
    if ((der[i] & 0x80) === 0) {
      parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/**
 * Whether the certificate is for `serverName` (its SNI: a host name or an IP literal), as nDPI
 * judges it: only against the subjectAltName (DNS names, wildcards covering one label; IP
 * addresses), and only when there is an SNI and a SAN. A certificate without SANs (a subject CN
 * only, as Tor's and many devices' are) is not judged.
 */
function nameCovered(x: X509Certificate, serverName: string): boolean {
  const san = x.subjectAltName ?? '';
  if (serverName === '' || san === '') return true;
  if (isIP(serverName) !== 0) return x.checkIP(serverName) !== undefined || san.split(', ').includes(`DNS:${serverName}`);
  return x.checkHost(serverName, { subject: 'never' }) !== undefined;
}

/** Certificates parsed recently, by their DER bytes and the server name (nameCovered depends on it). */
const parsed = new Map<string, Readonly<CertificateFacts> | null>();
/** Entries kept; past it the cache starts over (bounded memory: keys are the certificates' bytes). */
const PARSED_MAX = 1024;

/**
 * The facts of a DER certificate, or null when it does not parse; `serverName` is the SNI ('' when
 * none). The same certificate and name give the same (shared, frozen) object.
 */
export function readCertificate(der: Buffer, serverName: string): Readonly<CertificateFacts> | null {
  const key = `${serverName}\0${der.toString('latin1')}`;
  const hit = parsed.get(key);
  if (hit !== undefined) return hit;
  const facts = parseCertificate(der, serverName);
  if (parsed.size >= PARSED_MAX) parsed.clear();
  parsed.set(key, facts === null ? null : Object.freeze(facts));
  return parsed.get(key) ?? null;
}

function parseCertificate(der: Buffer, serverName: string): CertificateFacts | null {
  let x: X509Certificate;
  try {
    x = new X509Certificate(der);
  } catch {
    return null;
  }
  const oid = signatureOid(der);
  const signature = SIGNATURE_OIDS[oid] ?? oid;
  const pk = x.publicKey;
  const type = pk.asymmetricKeyType ?? 'unknown';
  const details = pk.asymmetricKeyDetails ?? {};
  const bits = details.modulusLength ?? (details.namedCurve !== undefined ? (CURVE_BITS[details.namedCurve] ?? 0) : 0);
  const key = bits > 0 ? `${type} ${bits}` : type;
  let weak = '';
  if ((type === 'rsa' || type === 'rsa-pss' || type === 'dsa') && bits > 0 && bits < 2048) weak = `${type} key of ${bits} bits`;
  else if (type === 'ec' && bits > 0 && bits < 224) weak = `ec key of ${bits} bits`;
  else if (/^(md5|sha1|dsaWithSHA1|ecdsaWithSHA1)/.test(signature)) weak = `${signature} signature`;
  return {
    subject: x.subject.replaceAll('\n', ', '),
    issuer: x.issuer.replaceAll('\n', ', '),
    san: x.subjectAltName ?? '',
    notBefore: Date.parse(x.validFrom),
    notAfter: Date.parse(x.validTo),
    key,
    signature,
    // nDPI's test: the issuer is the subject. checkIssued also compares the key identifiers.
    selfSigned: x.checkIssued(x),
    weak,
    nameCovered: nameCovered(x, serverName),
  };
}
