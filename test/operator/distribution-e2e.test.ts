/**
 * The loop with the real distribution server plugged in (the way `bulwark operator` runs it) and a
 * real agent-side client (OperatorConfigSource) holding a pod-bound ServiceAccount token, verified by
 * TokenReview on the dev cluster: a policy's status follows the agent's ACK and NACK.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import type { ConfigCandidate, ConfigVerdict } from "../../operator/agent/config-source.js";
import type { ResiliencePolicyStatus } from "../../operator/api/status.js";
import { distributionServerFactory } from "../../operator/app/distribution.js";
import type { RunningOperator } from "../../operator/app/operator.js";
import { POLICIES, startOperator } from "../../operator/app/operator.js";
import type { DevCluster } from "../../operator/devcluster/server.js";
import { startDevCluster } from "../../operator/devcluster/server.js";
import { OperatorConfigSource } from "../../operator/distribution/agent-client.js";
import type { DistributionServer } from "../../operator/distribution/distribution-server.js";
import { KubeClient, PODS, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";

const ROOT = resolve(import.meta.dirname, "../..");
const NS = "shop";

let cluster: DevCluster;
let client: KubeClient;
let dir: string;
let op: RunningOperator;
let server: DistributionServer | undefined;
let source: OperatorConfigSource | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 15_000,
) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function status(name: string): Promise<ResiliencePolicyStatus | undefined> {
  return (await client.get({ ...POLICIES, namespace: NS, name }))?.status as
    ResiliencePolicyStatus | undefined;
}

const cond = (s: ResiliencePolicyStatus | undefined, type: string) =>
  s?.conditions?.find((c) => c.type === type);

beforeAll(async () => {
  cluster = await startDevCluster({ port: 0 });
  dir = mkdtempSync(join(tmpdir(), "bulwark-op-dist-"));
  const kubeconfig = cluster.writeKubeconfig(join(dir, "kubeconfig"));
  client = new KubeClient(loadKubeConfig({ kubeconfigPath: kubeconfig }));
  await client.create(
    { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" },
    parse(
      readFileSync(join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml"), "utf8"),
    ) as KubeObject,
  );
  await client.create(
    { version: "v1", plural: "namespaces" },
    { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } },
  );
  await client.create(
    { version: "v1", plural: "serviceaccounts", namespace: NS },
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent", namespace: NS } },
  );
  await client.create({ ...PODS, namespace: NS }, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "web-1", namespace: NS, labels: { app: "web" } },
    spec: { serviceAccountName: "agent", containers: [{ name: "app", image: "app" }] },
  } as KubeObject);
  op = await startOperator({
    kubeconfigPath: kubeconfig,
    leaderElection: false,
    distributionPort: 0,
    distributor: distributionServerFactory({ host: "127.0.0.1", onStarted: (s) => (server = s) }),
  });
  await op.synced;
}, 60_000);

afterAll(async () => {
  await source?.close();
  await op?.stop();
  await cluster?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("the operator with the real distribution server", () => {
  it("an agent's ACK makes the policy Ready; its NACK shows on Propagated with the agent's reason", async () => {
    const token = await client.request<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${NS}/serviceaccounts/agent/token`,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences: ["bulwark"],
          expirationSeconds: 3600,
          boundObjectRef: { kind: "Pod", apiVersion: "v1", name: "web-1" },
        },
      },
    });
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, token.status.token);

    let active: string | undefined;
    /** What the agent says to the next config: undefined accepts it, a reason rejects it. */
    const verdict: { reject?: string } = {};
    source = new OperatorConfigSource({
      url: server?.url ?? "",
      tokenFile,
      pod: { namespace: NS, name: "web-1" },
      activeVersion: () => active,
      backoff: { baseMs: 50, maxMs: 500 },
    });
    source.subscribe((c: ConfigCandidate): ConfigVerdict => {
      const version = "document" in c ? (c.document as { version?: string }).version : undefined;
      if (verdict.reject !== undefined || version === undefined) {
        return {
          accepted: false,
          rejectedVersion: version,
          activeVersion: active,
          problems: [{ path: "upstreams[0].listenPort", message: verdict.reject ?? "no version" }],
        } as ConfigVerdict;
      }
      const unchanged = version === active;
      active = version;
      return { accepted: true, version, unchanged };
    });
    await until("agent connected", () => server?.connectedPods().includes(`${NS}/web-1`));
    expect(
      (await op.metrics.registry.getSingleMetric("bulwark_agents_connected")?.get())?.values[0]?.value,
    ).toBe(1);

    await client.create(
      { ...POLICIES, namespace: NS },
      {
        apiVersion: "resilience.bulwark.dev/v1alpha1",
        kind: "ResiliencePolicy",
        metadata: { name: "web", namespace: NS },
        spec: {
          selector: { matchLabels: { app: "web" } },
          upstreams: [{ name: "payments", host: "payments.shop.svc", port: 8080 }],
        },
      },
    );
    const ready = await until("Ready", async () => {
      const s = await status("web");
      return cond(s, "Ready")?.status === "True" ? s : undefined;
    });
    expect(ready.pods).toMatchObject({ selected: 1, acked: 1, summary: "1/1" });
    expect(cond(ready, "Propagated")?.message).toBe("1/1 pods acknowledged");
    expect(active).toBe(op.state.compiler.config(`${NS}/web-1`)?.version);

    // The agent reports an open breaker: the status counts it (and openBreakers sums it).
    source.report({
      pod: { namespace: NS, name: "web-1" },
      activeVersion: active,
      appHealth: "healthy",
      upstreams: [{ upstream: "payments", policy: `${NS}/web`, breaker: "open", inflight: 0, queued: 0 }],
      inbound: undefined,
      at: Date.now(),
    });
    const broken = await until("breaker counted", async () => {
      const s = await status("web");
      return s?.openBreakers === 1 ? s : undefined;
    });
    expect(broken.breakers).toEqual([{ upstream: "payments", closed: 0, halfOpen: 0, open: 1 }]);

    verdict.reject = "port 15001 already in use";
    await client.patch(
      { ...POLICIES, namespace: NS, name: "web" },
      {
        spec: { upstreams: [{ name: "payments", host: "payments.shop.svc", port: 8080, timeout: "3s" }] },
      },
    );
    const nacked = await until("Rejected", async () => {
      const s = await status("web");
      return cond(s, "Propagated")?.reason === "Rejected" ? s : undefined;
    });
    expect(nacked.pods).toMatchObject({ selected: 1, acked: 0, rejected: 1 });
    expect(cond(nacked, "Propagated")?.message).toContain("port 15001 already in use");
    expect(cond(nacked, "Ready")).toMatchObject({ status: "False", reason: "Rejected" });
  });
});
