// The webhooks' (and distribution's) TLS without cert-manager: the operator keeps its own CA and a serving
// certificate for its Service in one Secret, creates them on first start, reissues the serving certificate
// before it expires (the CA, valid ten years, stays, so the caBundle does not change), and writes the CA into
// the caBundle of its webhook configurations. Replicas race safely: create answers 409 to all but one, update
// is conditional on resourceVersion, and a loser re-reads and uses what the winner stored.
// With cert-manager (`--webhook-cert-dir`), the files it mounts are read instead and its cainjector fills the
// caBundle.
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { KubeClient, ResourceRef } from "../kube/client.js";
import type { KubeObject } from "../kube/types.js";
import { KubeApiError } from "../kube/types.js";
import { issueCertificate, notAfterMs, serviceHosts, type CertificatePair } from "./x509.js";

export interface ServingTls {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

const DAY = 86_400_000;

export interface SelfManagedTlsOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** The Service the API server and agents dial; its DNS names go into the certificate. */
  service: string;
  /** MutatingWebhookConfiguration whose caBundle to set. */
  mutatingWebhook?: string;
  /** ValidatingWebhookConfiguration whose caBundle to set. */
  validatingWebhook?: string;
  /** Defaults to 3650 days. */
  caValidityDays?: number;
  /** Defaults to 365 days. */
  certValidityDays?: number;
  /** Reissue the serving certificate this long before it expires. Defaults to 30 days. */
  renewBeforeDays?: number;
  /** Extra SAN entries (tests add 127.0.0.1). */
  extraHosts?: readonly string[];
  now?: () => number;
}

const SECRETS: ResourceRef = { version: "v1", plural: "secrets" };

function b64(s: string): string {
  return Buffer.from(s).toString("base64");
}
function unb64(s: unknown): string {
  return typeof s === "string" ? Buffer.from(s, "base64").toString("utf8") : "";
}

function statusOf(err: unknown): number | undefined {
  return err instanceof KubeApiError ? err.statusCode : undefined;
}

/** True when `pem` is valid past `untilMs` and names every host. */
function usable(pem: string, hosts: readonly string[], untilMs: number): boolean {
  try {
    if (notAfterMs(pem) <= untilMs) return false;
    const cert = new X509Certificate(pem);
    return hosts.every((h) => cert.checkHost(h) !== undefined || cert.checkIP(h) !== undefined);
  } catch {
    return false;
  }
}

function issue(o: SelfManagedTlsOptions, hosts: string[], ca: CertificatePair | undefined) {
  const now = o.now?.() ?? Date.now();
  const notBefore = new Date(now - 60 * 60_000); // clock skew
  const caPair =
    ca ??
    issueCertificate({
      commonName: `${o.service}.${o.namespace} CA (bulwark)`,
      notBefore,
      notAfter: new Date(now + (o.caValidityDays ?? 3650) * DAY),
      isCa: true,
    });
  const leaf = issueCertificate({
    commonName: `${o.service}.${o.namespace}.svc`,
    hosts,
    notBefore,
    notAfter: new Date(now + (o.certValidityDays ?? 365) * DAY),
    isCa: false,
    issuer: caPair,
  });
  return { ca: caPair, leaf };
}

function secretBody(o: SelfManagedTlsOptions, ca: CertificatePair, leaf: CertificatePair, base?: KubeObject) {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: "kubernetes.io/tls",
    ...(base ?? {}),
    metadata: {
      ...(base?.metadata ?? {}),
      name: o.secretName,
      namespace: o.namespace,
      labels: { ...(base?.metadata?.labels ?? {}), "app.kubernetes.io/managed-by": "bulwark-operator" },
    },
    data: {
      "tls.crt": b64(leaf.certPem),
      "tls.key": b64(leaf.keyPem),
      "ca.crt": b64(ca.certPem),
      "ca.key": b64(ca.keyPem),
    },
  } as KubeObject;
}

function fromSecret(s: KubeObject): { ca: CertificatePair; leaf: CertificatePair } {
  const data = ((s as { data?: Record<string, string> }).data ?? {}) as Record<string, string>;
  return {
    ca: { certPem: unb64(data["ca.crt"]), keyPem: unb64(data["ca.key"]) },
    leaf: { certPem: unb64(data["tls.crt"]), keyPem: unb64(data["tls.key"]) },
  };
}

/**
 * The serving TLS from the Secret: created when missing, reissued when it expires within renewBefore or
 * lacks a host. Three tries against conflicts with other replicas.
 */
export async function ensureSelfManagedTls(o: SelfManagedTlsOptions): Promise<ServingTls> {
  const hosts = [...serviceHosts(o.service, o.namespace), ...(o.extraHosts ?? [])];
  const ref = { ...SECRETS, namespace: o.namespace, name: o.secretName };
  for (let attempt = 0; ; attempt++) {
    const now = o.now?.() ?? Date.now();
    const renewAt = now + (o.renewBeforeDays ?? 30) * DAY;
    try {
      const existing = await o.client.get(ref);
      if (!existing) {
        const { ca, leaf } = issue(o, hosts, undefined);
        await o.client.create({ ...SECRETS, namespace: o.namespace }, secretBody(o, ca, leaf));
        return { caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem };
      }
      const stored = fromSecret(existing);
      if (usable(stored.leaf.certPem, hosts, renewAt) && stored.leaf.keyPem !== "")
        return { caPem: stored.ca.certPem, certPem: stored.leaf.certPem, keyPem: stored.leaf.keyPem };
      // Keep the CA while it outlives the new leaf (so the caBundle stays); else start over.
      const leafUntil = now + (o.certValidityDays ?? 365) * DAY;
      const keepCa = stored.ca.keyPem !== "" && usable(stored.ca.certPem, [], leafUntil);
      const { ca, leaf } = issue(o, hosts, keepCa ? stored.ca : undefined);
      await o.client.replace(ref, secretBody(o, ca, leaf, existing));
      return { caPem: ca.certPem, certPem: leaf.certPem, keyPem: leaf.keyPem };
    } catch (err) {
      const code = statusOf(err);
      if ((code === 409 || code === 404) && attempt < 3) continue; // another replica won: read its result
      throw new Error(`webhook TLS secret ${o.namespace}/${o.secretName}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

/** Writes `caPem` into every webhook's caBundle of one configuration (a JSON patch, only when it differs). */
export async function patchCaBundle(
  client: KubeClient,
  kind: "mutating" | "validating",
  name: string,
  caPem: string,
): Promise<boolean> {
  const ref: ResourceRef = {
    group: "admissionregistration.k8s.io",
    version: "v1",
    plural: `${kind}webhookconfigurations`,
    name,
  };
  const cfg = await client.get(ref);
  if (!cfg) throw new Error(`${kind} webhook configuration ${name} not found`);
  const bundle = b64(caPem);
  const webhooks = ((cfg as { webhooks?: { name?: string; clientConfig?: { caBundle?: string } }[] })
    .webhooks ?? []) as { name?: string; clientConfig?: { caBundle?: string } }[];
  const ops: unknown[] = [];
  webhooks.forEach((w, i) => {
    if (w.clientConfig?.caBundle === bundle) return;
    ops.push({ op: "test", path: `/webhooks/${i}/name`, value: w.name });
    ops.push({ op: "add", path: `/webhooks/${i}/clientConfig/caBundle`, value: bundle });
  });
  if (ops.length === 0) return false;
  await client.patch(ref, ops, "json");
  return true;
}

/** cert-manager's mounted files (tls.crt, tls.key, ca.crt). */
export function readCertDir(dir: string): ServingTls {
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  let caPem = "";
  try {
    caPem = read("ca.crt");
  } catch {
    // an issuer without a CA file: the caBundle is cert-manager's business
  }
  return { caPem, certPem: read("tls.crt"), keyPem: read("tls.key") };
}
