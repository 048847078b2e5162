// The injector, the admission answers and the certificate issuer, without a cluster: golden patches for fixed
// pods (UPDATE_GOLDEN=1 rewrites them), idempotence (an injected pod gets no second patch), opt-in/opt-out,
// the user's own env kept, and the validator's messages equal to the CLI's.
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { format } from "prettier";
import { describe, expect, it } from "vitest";
import { formatProblem, validatePolicy } from "../../operator/api/validate.js";
import { jsonPatch } from "../../operator/devcluster/patch.js";
import { injectReview, validateReview } from "../../operator/webhook/admission.js";
import { parseInjectorConfig } from "../../operator/webhook/injector-config.js";
import { decide, injectionPatch, type PodLike } from "../../operator/webhook/injector.js";
import { issueCertificate, serviceHosts } from "../../operator/webhook/x509.js";

const GOLDEN = new URL("./golden/", import.meta.url).pathname;
const config = parseInjectorConfig({
  image: "ghcr.io/bulwark-dev/bulwark:0.1.0",
  operatorUrl: "https://bulwark.bulwark-system.svc:15010",
  resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "256Mi" } },
  securityContext: { runAsNonRoot: true, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
});
const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

const plain: PodLike = {
  metadata: { name: "web-1" },
  spec: { containers: [{ name: "app", ports: [{ containerPort: 8080 }] }] },
};
const busy: PodLike = {
  metadata: {
    generateName: "web-",
    labels: { app: "web" },
    annotations: { "bulwark.dev/app-port": "9000", "team/owner": "shop" },
  },
  spec: {
    initContainers: [{ name: "migrate" }],
    containers: [{ name: "app", env: [{ name: "HTTP_PROXY" }, { name: "LOG" }] }, { name: "logger" }],
    volumes: [{ name: "data" }],
  },
};

function injected(pod: PodLike): PodLike {
  return jsonPatch(structuredClone(pod), injectionPatch(pod, config, "namespace", CA)) as PodLike;
}

describe("injectionPatch", () => {
  it.each([
    ["plain", plain],
    ["busy", busy],
  ] as const)("%s pod: matches golden/%s.json", async (name, pod) => {
    // formatted as prettier formats JSON, so `prettier --check .` passes on the golden files
    const out = await format(JSON.stringify(injectionPatch(pod, config, "namespace", CA)), {
      parser: "json",
    });
    const path = `${GOLDEN}${name}.json`;
    if (process.env.UPDATE_GOLDEN) writeFileSync(path, out);
    expect(out).toBe(readFileSync(path, "utf8"));
  });

  it("injects a native sidecar first, with the downward-API env, token, CA and values' resources", () => {
    const pod = injected(busy) as PodLike & { spec: { initContainers: Record<string, unknown>[] } };
    const agent = pod.spec.initContainers[0] as Record<string, unknown> & {
      env: { name: string; value?: string; valueFrom?: unknown }[];
    };
    expect(agent.name).toBe("bulwark-agent");
    expect(agent.restartPolicy).toBe("Always");
    expect(pod.spec.initContainers[1]).toEqual({ name: "migrate" });
    expect(agent.env).toContainEqual({
      name: "BULWARK_POD",
      valueFrom: { fieldRef: { fieldPath: "metadata.name" } },
    });
    expect(agent.env).toContainEqual({
      name: "BULWARK_NAMESPACE",
      valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } },
    });
    expect(agent.env).toContainEqual({ name: "BULWARK_APP_PORT", value: "9000" });
    expect(agent.resources).toEqual(config.resources);
    expect(agent.securityContext).toEqual(config.securityContext);
    expect(pod.metadata?.annotations?.["bulwark.dev/operator-ca"]).toBe(CA);
    expect(pod.metadata?.annotations?.["team/owner"]).toBe("shop");
  });

  it("keeps the app's own HTTP_PROXY and adds the others; every app container gets them", () => {
    const pod = injected(busy) as { spec: { containers: { env: { name: string; value?: string }[] }[] } };
    const app = pod.spec.containers[0]?.env ?? [];
    expect(app.filter((e) => e.name === "HTTP_PROXY")).toEqual([{ name: "HTTP_PROXY" }]);
    expect(app).toContainEqual({ name: "http_proxy", value: "http://127.0.0.1:15001" });
    expect(pod.spec.containers[1]?.env).toContainEqual({
      name: "HTTP_PROXY",
      value: "http://127.0.0.1:15001",
    });
  });

  it("is idempotent: an injected pod gets no patch", () => {
    for (const pod of [plain, busy]) {
      const once = injected(pod);
      expect(injectionPatch(once, config, "namespace", CA)).toEqual([]);
      expect(decide(once, "namespace")).toEqual({ inject: false, reason: "already-injected" });
    }
  });

  it("opt-in and opt-out", () => {
    const annotated = (v: string): PodLike => ({
      ...plain,
      metadata: { annotations: { "bulwark.dev/inject": v } },
    });
    expect(decide(plain, "namespace").inject).toBe(true);
    expect(decide(annotated("false"), "namespace")).toEqual({ inject: false, reason: "opted-out" });
    expect(decide(plain, "object")).toEqual({ inject: false, reason: "not-opted-in" });
    expect(decide(annotated("true"), "object").inject).toBe(true);
    expect(decide(annotated("false"), "object").inject).toBe(false);
  });

  it("without a CA the agent uses the system CAs: no CA volume or annotation", () => {
    const ops = injectionPatch(plain, config, "namespace");
    expect(JSON.stringify(ops)).not.toContain("bulwark-ca");
    expect(JSON.stringify(ops)).not.toContain("operator-ca");
  });
});

describe("admission answers", () => {
  it("the injector always allows, patching only pod creations it injects", () => {
    const req = { uid: "1", kind: { kind: "Pod" }, operation: "CREATE", object: plain };
    const r = injectReview(req, config, "namespace", CA).response;
    expect(r).toMatchObject({ uid: "1", allowed: true, patchType: "JSONPatch" });
    expect(JSON.parse(Buffer.from(r.patch ?? "", "base64").toString())).toEqual(
      injectionPatch(plain, config, "namespace", CA),
    );
    expect(injectReview({ ...req, operation: "UPDATE" }, config, "namespace").response).toEqual({
      uid: "1",
      allowed: true,
    });
  });

  it("the validator answers 422 with the CLI's messages, and allows a valid policy", () => {
    const bad = {
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "p", namespace: "shop" },
      spec: {
        selector: { matchLabels: { app: "x" } },
        upstreams: [{ name: "u", host: "u", port: 0 }],
        extra: 1,
      },
    };
    const cli = validatePolicy(bad);
    expect(cli.ok).toBe(false);
    const r = validateReview({ uid: "2", namespace: "shop", operation: "CREATE", object: bad }).response;
    expect(r.allowed).toBe(false);
    expect(r.status?.code).toBe(422);
    expect(r.status?.message).toBe(
      `ResiliencePolicy shop/p is invalid: ${cli.ok ? "" : cli.problems.map(formatProblem).join("; ")}`,
    );
    const good = {
      ...bad,
      spec: { selector: { matchLabels: { app: "x" } }, upstreams: [{ name: "u", host: "u", port: 80 }] },
    };
    expect(validateReview({ uid: "3", operation: "CREATE", object: good }).response).toEqual({
      uid: "3",
      allowed: true,
    });
  });
});

describe("x509", () => {
  it("issues a CA and a serving certificate for the Service names that node's TLS accepts", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const later = new Date("2036-01-01T00:00:00Z");
    const ca = issueCertificate({ commonName: "ca", notBefore: now, notAfter: later, isCa: true });
    const leaf = issueCertificate({
      commonName: "svc",
      hosts: serviceHosts("bulwark", "bulwark-system"),
      notBefore: now,
      notAfter: new Date("2027-01-01T00:00:00Z"),
      isCa: false,
      issuer: ca,
    });
    const caCert = new X509Certificate(ca.certPem);
    const cert = new X509Certificate(leaf.certPem);
    expect(caCert.ca).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkHost("bulwark.bulwark-system.svc")).toBe("bulwark.bulwark-system.svc");
    expect(cert.checkHost("other.svc")).toBeUndefined();
    expect(new Date(cert.validTo).toISOString()).toBe("2027-01-01T00:00:00.000Z");
    expect(new Date(caCert.validTo).getUTCFullYear()).toBe(2036);
  });
});
