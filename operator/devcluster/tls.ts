// A throwaway certificate authority and a serving certificate for 127.0.0.1/localhost, made with the
// `openssl` CLI (Node's crypto makes keys but cannot sign X.509 certificates, and this avoids a dependency).
// With a data directory the pair is kept there, so a restarted cluster keeps the CA its kubeconfig trusts.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args[0] ?? ""} failed: ${stderr.trim()}`, { cause: err });
  }
}

/** Makes a CA and a leaf certificate for the given hosts (IPs and DNS names) signed by it. */
export function generateTls(
  hosts: string[] = ["127.0.0.1", "localhost"],
  commonName = "bulwark-dev-cluster",
): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), "bulwark-tls-"));
  try {
    const san = hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(":") ? `IP:${h}` : `DNS:${h}`)).join(",");
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"], dir);
    openssl(
      [
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-sha256",
        "-days",
        "3650",
        "-subj",
        `/CN=${commonName}-ca`,
        "-out",
        "ca.crt",
      ],
      dir,
    );
    openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "tls.key.ec"], dir);
    // PKCS#8 so every TLS stack reads it.
    openssl(["pkcs8", "-topk8", "-nocrypt", "-in", "tls.key.ec", "-out", "tls.key"], dir);
    openssl(["req", "-new", "-key", "tls.key", "-subj", `/CN=${commonName}`, "-out", "tls.csr"], dir);
    writeFileSync(
      join(dir, "ext.cnf"),
      `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${san}\n`,
    );
    openssl(
      [
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "825",
        "-sha256",
        "-extfile",
        "ext.cnf",
        "-out",
        "tls.crt",
      ],
      dir,
    );
    return {
      caPem: readFileSync(join(dir, "ca.crt"), "utf8"),
      certPem: readFileSync(join(dir, "tls.crt"), "utf8"),
      keyPem: readFileSync(join(dir, "tls.key"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Loads the material kept in `dir`, or makes and keeps it there. */
export function loadOrGenerateTls(dir: string | undefined): TlsMaterial {
  if (!dir) return generateTls();
  const tlsDir = join(dir, "tls");
  const files = ["ca.crt", "tls.crt", "tls.key"].map((f) => join(tlsDir, f));
  if (files.every((f) => existsSync(f))) {
    const [ca, cert, key] = files.map((f) => readFileSync(f, "utf8"));
    return { caPem: ca ?? "", certPem: cert ?? "", keyPem: key ?? "" };
  }
  const material = generateTls();
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(tlsDir, "ca.crt"), material.caPem);
  writeFileSync(join(tlsDir, "tls.crt"), material.certPem);
  writeFileSync(join(tlsDir, "tls.key"), material.keyPem, { mode: 0o600 });
  return material;
}
