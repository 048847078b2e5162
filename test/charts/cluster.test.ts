// The chart proven on the dev cluster (which enforces RBAC for ServiceAccounts):
// - `helm template` output passes `kubectl apply --dry-run=server`, then applies for real; `helm install`
//   against the cluster rejects a bad value through the schema;
// - the operator runs in process under exactly the chart's ServiceAccount (a TokenRequest token for it, the
//   chart's ClusterRole/Roles/bindings applied): it creates its TLS Secret, sets the webhooks' caBundle,
//   leads through the chart's Lease, reconciles a policy to Accepted, serves a real agent over TLS (the
//   injected token and CA; TokenReview) until the policy is Ready, and rotates its certificate — with no request denied;
// - every (verb, resource) the chart's roles grant was used in that run, and nothing else was: so removing
//   any one rule (or verb) from the chart makes one of those calls fail (no rule is superfluous);
// - the injection webhook through the dev cluster: a pod created in a namespace labelled
//   bulwark.dev/inject=enabled comes back with the agent; policies are created through the validating webhook
//   (failurePolicy Fail), which answers an invalid one with validatePolicy's messages.
import { spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { request as httpsRequest } from "node:https";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { formatProblem, validatePolicy } from "../../operator/api/validate.js";
import { startOperator, type RunningOperator } from "../../operator/app/operator.js";
import type { ResourceAttributes } from "../../operator/devcluster/rbac.js";
import { startDevCluster, type DevCluster } from "../../operator/devcluster/server.js";
import { Agent } from "../../operator/agent/agent.js";
import type { AgentSettings } from "../../operator/agent/settings.js";
import { TokenReviewAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import { operatorSource } from "../../operator/distribution/agent-client.js";
import { startDistributionServer } from "../../operator/distribution/distribution-server.js";
import { KubeClient, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";
import { parseInjectorConfig } from "../../operator/webhook/injector-config.js";
import { CHART_DIR, HELM, KUBECTL, NAMESPACE, RELEASE, ensureTools, runAsync, template } from "./helm.js";

const SA_USER = `system:serviceaccount:${NAMESPACE}:${RELEASE}`;
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };
type Obj = KubeObject & { rules?: Rule[]; data?: Record<string, string> };

let cluster: DevCluster;
let admin: KubeClient;
let adminKubeconfig: string;
let rendered: Obj[];
let operator: RunningOperator | undefined;
const used: { a: ResourceAttributes; allowed: boolean }[] = [];

function kubectl(args: string[], input?: string) {
  return runAsync(KUBECTL, ["--kubeconfig", adminKubeconfig, ...args], input);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function until<T>(what: string, f: () => Promise<T | undefined> | T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const POLICIES = { group: "resilience.bulwark.dev", version: "v1alpha1", plural: "resiliencepolicies" };
const PODS = { version: "v1", plural: "pods" };

beforeAll(async () => {
  ensureTools();
  cluster = await startDevCluster({
    onAuthorize: (user, a, d) => {
      if (user.username === SA_USER) used.push({ a, allowed: d.allowed });
    },
  });
  const dir = mkdtempSync(join(tmpdir(), "bulwark-chart-"));
  adminKubeconfig = cluster.writeKubeconfig(join(dir, "admin.kubeconfig"));
  admin = new KubeClient(loadKubeConfig({ kubeconfigPath: adminKubeconfig }));
  const text = template();
  writeFileSync(join(dir, "bulwark.yaml"), text);
  rendered = parseAllDocuments(text)
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null);
  expect((await kubectl(["apply", "-f", `${CHART_DIR}/crds`])).status).toBe(0);
  expect((await kubectl(["create", "namespace", NAMESPACE])).status).toBe(0);
});

afterAll(async () => {
  await operator?.stop().catch(() => undefined);
  await cluster?.stop();
});

describe("the rendered chart on the dev cluster", () => {
  it("passes kubectl apply --dry-run=server, then applies for real", async () => {
    const file = join(adminKubeconfig, "..", "bulwark.yaml");
    const dry = await kubectl(["apply", "--dry-run=server", "-f", file]);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/deployment.apps\/bulwark created \(server dry run\)/);
    const real = await kubectl(["apply", "-f", file]);
    expect(real.status, real.stderr).toBe(0);
    for (const kind of ["deployment", "poddisruptionbudget", "service", "serviceaccount", "role", "rolebinding"])
      expect((await kubectl(["get", kind, "-n", NAMESPACE, "-o", "name"])).stdout).toContain("bulwark");
    for (const kind of ["clusterrole", "clusterrolebinding", "mutatingwebhookconfiguration", "validatingwebhookconfiguration"])
      expect((await kubectl(["get", kind, "-o", "name"])).stdout).toContain("bulwark");
  });

  it.each(["minimal", "custom"])("values/%s.yaml renders objects the cluster accepts (dry run)", async (name) => {
    const file = join(adminKubeconfig, "..", `${name}.yaml`);
    writeFileSync(file, template(["-f", `${CHART_DIR}/../../test/charts/values/${name}.yaml`]));
    const dry = await kubectl(["apply", "--dry-run=server", "-f", file]);
    expect(dry.status, dry.stderr).toBe(0);
  });

  it("helm install, upgrade and uninstall work against the cluster (another release, another namespace)", async () => {
    const helm = (...args: string[]) => runAsync(HELM, [...args, "--kubeconfig", adminKubeconfig, "-n", "demo-system"]);
    const install = await helm("install", "demo", CHART_DIR, "--create-namespace");
    expect(install.status, install.stderr).toBe(0);
    expect(install.stdout).toContain("kubectl label namespace <ns> bulwark.dev/inject=enabled"); // NOTES.txt
    const upgrade = await helm("upgrade", "demo", CHART_DIR, "--set", "replicaCount=3");
    expect(upgrade.status, upgrade.stderr).toBe(0);
    const dep = (await admin.get({ group: "apps", version: "v1", plural: "deployments", namespace: "demo-system", name: "demo-bulwark" })) as { spec: { replicas: number } };
    expect(dep.spec.replicas).toBe(3);
    const uninstall = await helm("uninstall", "demo", "--wait=false");
    // The chart's objects go; only helm's own purge of its release Secret may fail here, because helm sends
    // that DeleteOptions as protobuf, which the dev cluster does not decode for Secrets' deletes (its limit).
    if (uninstall.status !== 0) expect(uninstall.stderr).toMatch(/Failed to purge the release: .*protobuf/);
    expect(await admin.get({ group: "admissionregistration.k8s.io", version: "v1", plural: "mutatingwebhookconfigurations", name: "demo-bulwark-sidecar-injector" })).toBeUndefined();
  });

  it("helm install against the cluster rejects a bad value through the schema", async () => {
    const r = await runAsync(HELM, ["install", "x", CHART_DIR, "--kubeconfig", adminKubeconfig, "-n", NAMESPACE, "--set", "replicaCount=0"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/replicaCount: Must be greater than or equal to 1/);
  });
});

describe("the operator under exactly the chart's ServiceAccount", () => {
  let webhookPort = 0;
  let distributionUrl = "";

  it("starts, owns its TLS, leads, injects, reconciles a policy to Accepted, then Ready once a real agent ACKs over TLS", async () => {
    const tr = (await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${RELEASE}/token`,
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
    })) as { status: { token: string } };
    const saConfig = join(adminKubeconfig, "..", "sa.kubeconfig");
    writeFileSync(saConfig, cluster.kubeconfigFor(tr.status.token));

    // The dev cluster runs no kube-proxy: point the chart's Service at the in-process webhook server.
    webhookPort = await freePort();
    await admin.create(
      { version: "v1", plural: "endpoints", namespace: NAMESPACE },
      {
        apiVersion: "v1",
        kind: "Endpoints",
        metadata: { name: RELEASE, namespace: NAMESPACE },
        subsets: [{ addresses: [{ ip: "127.0.0.1" }], ports: [{ name: "webhook", port: webhookPort }] }],
      } as KubeObject,
    );
    const cm = rendered.find((o) => o.kind === "ConfigMap" && o.metadata?.name === `${RELEASE}-injector`);
    const injector = parseInjectorConfig(JSON.parse(cm?.data?.["config.json"] ?? "{}"));

    operator = await startOperator({
      kubeConfig: loadKubeConfig({ kubeconfigPath: saConfig }),
      identity: "bulwark-0",
      leaseNamespace: NAMESPACE,
      leaseName: RELEASE, // --lease-name in the chart's Deployment
      leaseDurationMs: 3000,
      renewDeadlineMs: 2000,
      retryPeriodMs: 200,
      withdrawalTimeoutMs: 2000,
      webhook: {
        port: webhookPort,
        host: "127.0.0.1",
        certificate: {
          kind: "self-managed",
          namespace: NAMESPACE,
          secretName: `${RELEASE}-webhook-tls`,
          service: RELEASE,
          mutatingWebhook: `${RELEASE}-sidecar-injector`,
          validatingWebhook: `${RELEASE}-policy-validator`,
          extraHosts: ["127.0.0.1"], // the in-process agent dials 127.0.0.1, not the Service name
        },
        injector,
        recheckMs: 3_600_000,
      },
      distributor: async (ctx) => {
        const server = await startDistributionServer({
          debounce: { quietMs: 20, maxMs: 200 },
          port: 0,
          host: "127.0.0.1",
          ...(ctx.servingTls ? { tls: { cert: Buffer.from(ctx.servingTls.certPem), key: Buffer.from(ctx.servingTls.keyPem) } } : {}),
          authenticator: new TokenReviewAuthenticator(ctx.kubeClient),
        });
        distributionUrl = `https://127.0.0.1:${new URL(server.url).port}`;
        return {
          setDesired: (pod, config) => server.setDesired(pod, config),
          propagation: (pod) => server.propagation(pod),
          onChange: (listener) => server.onChange(listener),
          forget: (pod) => server.forget(pod),
          stop: () => server.close(),
        };
      },
    });
    await operator.synced;
    await until("leadership", () => operator?.isLeader());

    // TLS: the Secret exists, both webhook configurations carry its CA.
    const secret = (await admin.get({ version: "v1", plural: "secrets", namespace: NAMESPACE, name: `${RELEASE}-webhook-tls` })) as Obj;
    const caPem = Buffer.from(secret.data?.["ca.crt"] ?? "", "base64").toString();
    expect(new X509Certificate(caPem).ca).toBe(true);
    for (const kind of ["mutating", "validating"]) {
      const cfg = (await admin.get({
        group: "admissionregistration.k8s.io",
        version: "v1",
        plural: `${kind}webhookconfigurations`,
        name: `${RELEASE}-${kind === "mutating" ? "sidecar-injector" : "policy-validator"}`,
      })) as { webhooks: { clientConfig: { caBundle?: string } }[] };
      for (const w of cfg.webhooks) expect(Buffer.from(w.clientConfig.caBundle ?? "", "base64").toString()).toBe(caPem);
    }

    // An opted-in namespace; a pod created there comes back injected (through the dev cluster's webhook call).
    await admin.create({ version: "v1", plural: "namespaces" }, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "shop", labels: { "bulwark.dev/inject": "enabled" } },
    } as KubeObject);
    // (newer dev clusters make it themselves, as the ServiceAccount controller does)
    await admin.create({ version: "v1", plural: "serviceaccounts", namespace: "shop" }, {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: "default", namespace: "shop" },
    } as KubeObject).catch((err: unknown) => {
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    });
    const pod = (await admin.create({ ...PODS, namespace: "shop" }, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } },
      spec: { containers: [{ name: "app", image: "shop/web:1", ports: [{ containerPort: 8080 }] }] },
    } as KubeObject)) as KubeObject & {
      spec: { initContainers?: Record<string, unknown>[]; containers: { env?: { name: string; value?: string }[] }[]; volumes?: Record<string, unknown>[] };
    };
    const agent = pod.spec.initContainers?.[0];
    expect(agent).toMatchObject({ name: "bulwark-agent", restartPolicy: "Always", image: injector.image, args: ["agent"] });
    expect(agent?.resources).toEqual(injector.resources);
    expect(agent?.securityContext).toEqual(injector.securityContext);
    expect(pod.spec.containers[0]?.env).toContainEqual({ name: "HTTP_PROXY", value: "http://127.0.0.1:15001" });
    expect(pod.spec.volumes).toContainEqual({
      name: "bulwark-token",
      projected: { sources: [{ serviceAccountToken: { audience: "bulwark", expirationSeconds: 3600, path: "token" } }] },
    });
    expect(pod.metadata?.annotations?.["bulwark.dev/operator-ca"]).toBe(caPem);
    expect(pod.metadata?.labels?.["bulwark.dev/injected"]).toBe("true");
    // Opted out by annotation: untouched.
    const optOut = (await admin.create({ ...PODS, namespace: "shop" }, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "batch-1", namespace: "shop", annotations: { "bulwark.dev/inject": "false" } },
      spec: { containers: [{ name: "job", image: "shop/batch:1" }] },
    } as KubeObject)) as KubeObject & { spec: { initContainers?: unknown[] } };
    expect(optOut.spec.initContainers).toBeUndefined();
    // Elsewhere, only pods annotated bulwark.dev/inject: "true" (the object webhook, failurePolicy Ignore).
    await admin.create({ version: "v1", plural: "namespaces" }, {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "batch" },
    } as KubeObject);
    const mkPod = async (name: string, annotations: Record<string, string>) =>
      (await admin.create({ ...PODS, namespace: "batch" }, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: "batch", annotations },
        spec: { containers: [{ name: "job", image: "batch:1" }] },
      } as KubeObject)) as KubeObject & { spec: { initContainers?: { name: string }[] } };
    expect((await mkPod("opted-in", { "bulwark.dev/inject": "true" })).spec.initContainers?.[0]?.name).toBe(
      "bulwark-agent",
    );
    expect((await mkPod("plain", {})).spec.initContainers).toBeUndefined();

    // A policy reconciled to Accepted by the SA-identified operator.
    await admin.create({ ...POLICIES, namespace: "shop" }, {
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "web", namespace: "shop" },
      spec: { selector: { matchLabels: { app: "web" } }, upstreams: [{ name: "payments", host: "payments.shop.svc.cluster.local", port: 8080, timeout: "2s" }] },
    } as KubeObject);
    await until("Accepted=True", async () => {
      const p = (await admin.get({ ...POLICIES, namespace: "shop", name: "web" })) as { status?: { conditions?: { type: string; status: string }[] } };
      return p.status?.conditions?.some((c) => c.type === "Accepted" && c.status === "True") || undefined;
    });

    // The agent path, as the injector wired it: the pod's projected token (audience bulwark, bound to the pod)
    // and the CA from the pod's annotation; the operator reviews the token with its own identity
    // (TokenReview), pushes the config, the agent ACKs, and the policy becomes Ready.
    const agentToken = (await admin.request({
      method: "POST",
      path: `/api/v1/namespaces/shop/serviceaccounts/default/token`,
      body: {
        spec: {
          audiences: ["bulwark"],
          boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "web-1", uid: pod.metadata?.uid },
        },
      },
    })) as { status: { token: string } };
    const dir = join(adminKubeconfig, "..");
    writeFileSync(join(dir, "agent.token"), agentToken.status.token);
    writeFileSync(join(dir, "agent-ca.crt"), pod.metadata?.annotations?.["bulwark.dev/operator-ca"] ?? "");
    const settings: AgentSettings = {
      configFile: undefined,
      operatorUrl: distributionUrl,
      tokenFile: join(dir, "agent.token"),
      operatorCaFile: join(dir, "agent-ca.crt"),
      pod: "web-1",
      namespace: "shop",
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      appPort: 8080,
      stateDir: undefined,
      listenAddress: "127.0.0.1",
      stateMaxAgeMs: 600_000,
    };
    let sidecar: Agent | undefined = undefined;
    const source = operatorSource(
      settings,
      () => sidecar?.runtime?.version,
      () => undefined,
    );
    sidecar = new Agent({ settings, source, logWrite: () => undefined, reportIntervalMs: 200 });
    await sidecar.start();
    try {
      await until("Ready=True (the agent acknowledged over TLS)", async () => {
        const p = (await admin.get({ ...POLICIES, namespace: "shop", name: "web" })) as {
          status?: { conditions?: { type: string; status: string }[] };
        };
        return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") || undefined;
      });
    } finally {
      await sidecar.stop(1000);
    }

    // Rotation: a certificate due for renewal is reissued into the same Secret under the same CA.
    const before = operator.webhooks?.tls().certPem;
    await rotateNow(operator);
    expect(operator.webhooks?.tls().certPem).not.toBe(before);
    expect(operator.webhooks?.tls().caPem).toBe(caPem);

    // The Lease is renewed (update) at least once.
    await until("a lease renewal", () => used.some((u) => u.a.resource === "leases" && u.a.verb === "update") || undefined);
  });

  it("the validating webhook answers with validatePolicy's messages, over the TLS the API server uses", async () => {
    // The CRD's own schema already refuses what validatePolicy refuses (the API server validates it before
    // the validating webhooks), so the review is sent as the API server sends it: HTTPS to the Service's
    // endpoint, server name <svc>.<ns>.svc, trusting the caBundle the operator wrote.
    const cfg = (await admin.get({
      group: "admissionregistration.k8s.io",
      version: "v1",
      plural: "validatingwebhookconfigurations",
      name: `${RELEASE}-policy-validator`,
    })) as { webhooks: { clientConfig: { caBundle: string; service: { path: string } } }[] };
    const wh = cfg.webhooks[0];
    const bad = {
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "bad", namespace: "shop" },
      spec: {
        selector: { matchLabels: { app: "web" } },
        upstreams: [{ name: "p", host: "p.shop", port: 80, timeout: "1s", retry: { maxAttempts: 3, perTryTimeout: "5s" } }],
      },
    };
    const body = JSON.stringify({
      apiVersion: "admission.k8s.io/v1",
      kind: "AdmissionReview",
      request: { uid: "u-1", kind: { group: "resilience.bulwark.dev", version: "v1alpha1", kind: "ResiliencePolicy" }, namespace: "shop", name: "bad", operation: "CREATE", object: bad },
    });
    const answer = await new Promise<{ response: { uid: string; allowed: boolean; status?: { message: string } } }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port: webhookPort,
          path: wh?.clientConfig.service.path,
          method: "POST",
          servername: `${RELEASE}.${NAMESPACE}.svc`,
          ca: Buffer.from(wh?.clientConfig.caBundle ?? "", "base64").toString(),
          headers: { "content-type": "application/json" },
        },
        (res) => {
          let text = "";
          res.on("data", (d: Buffer) => (text += d.toString()));
          res.on("end", () => resolve(JSON.parse(text) as never));
        },
      );
      req.on("error", reject);
      req.end(body);
    });
    const cli = validatePolicy(bad);
    expect(cli.ok).toBe(false);
    expect(answer.response).toMatchObject({ uid: "u-1", allowed: false });
    expect(answer.response.status?.message).toBe(
      `ResiliencePolicy shop/bad is invalid: ${cli.ok ? "" : cli.problems.map(formatProblem).join("; ")}`,
    );
  });

  it("no call was denied, and the chart grants exactly the (verb, resource) pairs the run used", async () => {
    await operator?.stop();
    operator = undefined;
    const denied = used.filter((u) => !u.allowed).map((u) => key(u.a));
    expect(denied).toEqual([]);
    const granted = new Set<string>();
    for (const role of rendered.filter((o) => o.kind === "ClusterRole" || o.kind === "Role")) {
      const scope = role.kind === "Role" ? `ns/${role.metadata?.namespace ?? ""}` : "any";
      for (const rule of role.rules ?? [])
        for (const g of rule.apiGroups)
          for (const r of rule.resources)
            for (const v of rule.verbs) {
              const k = `${scope} ${v} ${g}/${r}${rule.resourceNames ? `[${rule.resourceNames.join(",")}]` : ""}`;
              expect(granted.has(k), `rule ${k} appears twice`).toBe(false);
              granted.add(k);
            }
    }
    // Each call is covered by exactly one grant, so dropping that grant denies the call.
    for (const u of used) expect(coveringGrants(u.a, granted), key(u.a)).toHaveLength(1);
    const usedKeys = new Set(used.map((u) => grantOf(u.a, granted)));
    if (process.env.SHOW_RBAC) console.log([...usedKeys].sort().join("\n"));
    // Needed only on a path a run may not take: the re-read of a policy after a 409 on its status write
    // (the reconciler starts from the object it wrote itself, so only someone else's write causes one).
    const onConflictOnly = ["any get resilience.bulwark.dev/resiliencepolicies"];
    for (const k of onConflictOnly) expect(granted.has(k), `${k} is granted`).toBe(true);
    const exercised = new Set([...usedKeys, ...onConflictOnly]);
    expect([...exercised].sort()).toEqual([...granted].sort());
  });
});

describe("`bulwark operator` with the chart's Deployment args, as the chart's ServiceAccount", () => {
  it("serves webhooks (an injected pod) and distribution over TLS, ready on /readyz, exits 0 on SIGTERM", async () => {
    const dep = rendered.find((o) => o.kind === "Deployment") as unknown as {
      spec: { template: { spec: { containers: { args: string[] }[] } } };
    };
    const [health, metrics, distribution, webhook] = [await freePort(), await freePort(), await freePort(), await freePort()];
    const dir = join(adminKubeconfig, "..");
    const cm = rendered.find((o) => o.kind === "ConfigMap" && o.metadata?.name === `${RELEASE}-injector`);
    writeFileSync(join(dir, "injector.json"), cm?.data?.["config.json"] ?? "{}");
    const local: Record<string, string> = {
      "--health-port": String(health),
      "--metrics-port": String(metrics),
      "--distribution-port": String(distribution),
      "--webhook-port": String(webhook),
      "--injector-config": join(dir, "injector.json"),
    };
    const args = (dep.spec.template.spec.containers[0]?.args ?? []).map((a) => {
      const [flag = ""] = a.split("=");
      return local[flag] !== undefined ? `${flag}=${local[flag]}` : a;
    });
    expect(args[0]).toBe("operator");
    await admin.patch(
      { version: "v1", plural: "endpoints", namespace: NAMESPACE, name: RELEASE },
      { subsets: [{ addresses: [{ ip: "127.0.0.1" }], ports: [{ name: "webhook", port: webhook }] }] },
    );
    const child = spawn(
      join(CHART_DIR, "../../node_modules/.bin/tsx"),
      [join(CHART_DIR, "../../operator/cli/main.ts"), ...args, "--kubeconfig", join(dir, "sa.kubeconfig"), "--bind-address=127.0.0.1"],
      { env: { ...process.env, POD_NAME: "bulwark-cli", POD_NAMESPACE: NAMESPACE }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      await until(
        "the CLI's /readyz",
        async () => (await fetch(`http://127.0.0.1:${health}/readyz`).catch(() => undefined))?.status === 200 || undefined,
        40_000,
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}\n${output}`);
      });
      const pod = (await admin.create({ ...PODS, namespace: "shop" }, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: "web-2", namespace: "shop", labels: { app: "web" } },
        spec: { containers: [{ name: "app", image: "shop/web:1" }] },
      } as KubeObject)) as KubeObject & { spec: { initContainers?: { name: string }[] } };
      expect(pod.spec.initContainers?.[0]?.name, output).toBe("bulwark-agent");
      // Distribution speaks TLS with the certificate the agents are told to trust (the pod's CA annotation).
      const ca = pod.metadata?.annotations?.["bulwark.dev/operator-ca"] ?? "";
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(
          { host: "127.0.0.1", port: distribution, path: "/", servername: `${RELEASE}.${NAMESPACE}.svc`, ca },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
      expect(status).toBeGreaterThanOrEqual(200);
      child.kill("SIGTERM");
      expect(await exited, output).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  }, 90_000);
});

function key(a: ResourceAttributes): string {
  return `${a.verb} ${a.group}/${a.resource}${a.subresource ? `/${a.subresource}` : ""}${a.name ? ` ${a.name}` : ""}${a.namespace ? ` in ${a.namespace}` : ""}`;
}

/** The chart grants that cover a call. */
function coveringGrants(a: ResourceAttributes, granted: Set<string>): string[] {
  return candidatesOf(a).filter((c) => granted.has(c));
}

/** The chart grant a used call maps to. */
function grantOf(a: ResourceAttributes, granted: Set<string>): string {
  return coveringGrants(a, granted)[0] ?? `UNGRANTED ${key(a)}`;
}

function candidatesOf(a: ResourceAttributes): string[] {
  const res = `${a.group}/${a.resource}${a.subresource ? `/${a.subresource}` : ""}`;
  const candidates = [
    ...(a.namespace ? [`ns/${a.namespace} ${a.verb} ${res}${a.name ? `[${a.name}]` : ""}`, `ns/${a.namespace} ${a.verb} ${res}`] : []),
    `any ${a.verb} ${res}${a.name ? `[${a.name}]` : ""}`,
    `any ${a.verb} ${res}`,
  ];
  return [...new Set(candidates)];
}

/** Forces the serving certificate's renewal (as if it were within renewBefore of expiry). */
async function rotateNow(op: RunningOperator): Promise<void> {
  const { ensureSelfManagedTls } = await import("../../operator/webhook/tls.js");
  const next = await ensureSelfManagedTls({
    client: op.kubeClient,
    namespace: NAMESPACE,
    secretName: `${RELEASE}-webhook-tls`,
    service: RELEASE,
    renewBeforeDays: 400, // longer than the certificate's life: due now
  });
  expect(next.certPem).not.toBe(op.webhooks?.tls().certPem);
  await op.webhooks?.recheck(); // picks the new Secret content up and serves it
}
