// A small X.509 issuer on node:crypto alone (ECDSA P-256, SHA-256): a CA and serving certificates for the
// webhooks and distribution. The image is distroless (no openssl) and node:crypto can parse and verify
// certificates but not sign them, so the DER is built here (RFC 5280 §4.1: TBSCertificate, extensions
// basicConstraints, keyUsage, extKeyUsage, subjectAltName, subject/authority key identifiers).
import {
  X509Certificate,
  createHash,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from "node:crypto";
import { createPrivateKey } from "node:crypto";

export interface CertificatePair {
  /** PEM certificate. */
  readonly certPem: string;
  /** PEM PKCS#8 private key. */
  readonly keyPem: string;
}

// ---- DER ----

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function tlv(tag: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}
const seq = (...items: Buffer[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Buffer[]) => tlv(0x31, Buffer.concat(items));
const octets = (b: Buffer) => tlv(0x04, b);
const bitString = (b: Buffer) => tlv(0x03, Buffer.concat([Buffer.from([0]), b]));
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, "utf8"));
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0]));
const explicit = (n: number, b: Buffer) => tlv(0xa0 + n, b);

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let body = b.subarray(i);
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(0x02, body);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out: number[] = [40 * (parts[0] ?? 0) + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const groups: number[] = [];
    let v = p;
    do {
      groups.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let k = 0; k < groups.length - 1; k++) groups[k] = (groups[k] ?? 0) | 0x80;
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime before 2050, GeneralizedTime from then on (RFC 5280 §4.1.2.5). */
function time(d: Date): Buffer {
  const iso = d
    .toISOString()
    .replace(/\.\d{3}Z$/, "Z")
    .replace(/[-:T]/g, "");
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

const ECDSA_SHA256 = seq(oid("1.2.840.10045.4.3.2"));
const name = (cn: string) => seq(set(seq(oid("2.5.4.3"), utf8(cn))));
const ext = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

function keyId(spki: Buffer): Buffer {
  return createHash("sha1").update(spki).digest();
}

function sanEntries(hosts: readonly string[]): Buffer {
  return seq(
    ...hosts.map((h) => {
      if (/^\d+\.\d+\.\d+\.\d+$/.test(h)) return tlv(0x87, Buffer.from(h.split(".").map(Number)));
      return tlv(0x82, Buffer.from(h, "ascii"));
    }),
  );
}

function toPem(label: string, der: Buffer): string {
  const b64 = der.toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith("\n") ? "" : "\n"}-----END ${label}-----\n`;
}

export interface IssueOptions {
  commonName: string;
  /** DNS names and IPv4 addresses for subjectAltName (leaf certificates). */
  hosts?: readonly string[];
  notBefore: Date;
  notAfter: Date;
  isCa: boolean;
  /** The issuer; absent for a self-signed CA. */
  issuer?: CertificatePair;
}

/** Issues one certificate with a fresh P-256 key. */
export function issueCertificate(o: IssueOptions): CertificatePair {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const issuerCert = o.issuer ? new X509Certificate(o.issuer.certPem) : undefined;
  const signingKey: KeyObject = o.issuer ? createPrivateKey(o.issuer.keyPem) : privateKey;
  const issuerSpki = issuerCert ? issuerCert.publicKey.export({ type: "spki", format: "der" }) : spki;
  const issuerName = issuerCert ? name(issuerCert.subject.replace(/^CN=/, "")) : name(o.commonName);
  const extensions: Buffer[] = [
    ext("2.5.29.19", true, o.isCa ? seq(bool(true)) : seq()),
    // keyUsage: CA → keyCertSign|cRLSign (bits 5,6); leaf → digitalSignature (bit 0).
    ext("2.5.29.15", true, o.isCa ? tlv(0x03, Buffer.from([1, 0x06])) : tlv(0x03, Buffer.from([7, 0x80]))),
    ext("2.5.29.14", false, octets(keyId(spki))),
    ext("2.5.29.35", false, seq(tlv(0x80, keyId(issuerSpki)))),
  ];
  if (!o.isCa) {
    extensions.push(ext("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))));
    if (o.hosts && o.hosts.length > 0) extensions.push(ext("2.5.29.17", false, sanEntries(o.hosts)));
  }
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f;
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(serial),
    ECDSA_SHA256,
    issuerName,
    seq(time(o.notBefore), time(o.notAfter)),
    name(o.commonName),
    spki,
    explicit(3, seq(...extensions)),
  );
  const signature = sign("sha256", tbs, { key: signingKey, dsaEncoding: "der" });
  const der = seq(tbs, ECDSA_SHA256, bitString(signature));
  return {
    certPem: toPem("CERTIFICATE", der),
    keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

/** The DNS names a webhook Service answers to. */
export function serviceHosts(service: string, namespace: string): string[] {
  return [
    service,
    `${service}.${namespace}`,
    `${service}.${namespace}.svc`,
    `${service}.${namespace}.svc.cluster.local`,
  ];
}

/** When a certificate stops being valid (ms since the epoch). */
export function notAfterMs(certPem: string): number {
  return new Date(new X509Certificate(certPem).validTo).getTime();
}
