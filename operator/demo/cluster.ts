// The demo's objects in the dev cluster: the CRD, namespace `shop` with a ServiceAccount, one Pod per demo
// pod (labels app=<service>, status Ready so the operator selects it and gives it a quota), a bound
// ServiceAccount token per pod (TokenRequest, audience bulwark, bound to the Pod — what the injector would
// project), the policies, and reads of the policies' status.
import { writeFileSync } from "node:fs";
import { KubeClient, loadKubeConfig, PODS, type ResourceRef } from "../kube/client.js";
import type { KubeObject } from "../kube/types.js";
import { POLICIES } from "../app/operator.js";
import { NAMESPACE, type PodLayout } from "./layout.js";
import type { PolicyObject } from "./policies.js";

const CRDS: ResourceRef = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
};
const SERVICE_ACCOUNT = "bulwark-demo";

export interface PolicyView {
  readonly name: string;
  readonly accepted: string;
  readonly propagated: string;
  readonly ready: string;
  readonly pods: string;
  readonly generation: number | undefined;
  readonly observedGeneration: number | undefined;
  readonly quotas: readonly { pod: string; concurrency?: number; requestsPerSecond?: number }[];
  readonly sheddingLevel: number | undefined;
  readonly message: string | undefined;
}

export class DemoCluster {
  readonly client: KubeClient;

  constructor(kubeconfigPath: string) {
    this.client = new KubeClient(loadKubeConfig({ kubeconfigPath }), { requestTimeoutMs: 10_000 });
  }

  /** Creates the CRD (generated from the schema, as crds/ is) and waits until it is served. */
  async installCrd(crd: unknown): Promise<void> {
    await this.client.create(CRDS, crd as KubeObject);
    for (let i = 0; ; i++) {
      try {
        await this.client.list({ ...POLICIES, namespace: NAMESPACE });
        return;
      } catch (err) {
        if (i > 100) throw new Error("the ResiliencePolicy CRD is not served", { cause: err });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  async createNamespace(): Promise<void> {
    await this.client.create(
      { version: "v1", plural: "namespaces" },
      { apiVersion: "v1", kind: "Namespace", metadata: { name: NAMESPACE } },
    );
    await this.client.create(
      { version: "v1", plural: "serviceaccounts", namespace: NAMESPACE },
      { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: SERVICE_ACCOUNT, namespace: NAMESPACE } },
    );
  }

  /** Creates the Pod, marks it Ready, and writes a token bound to it; returns the token file. */
  async registerPod(pod: PodLayout, tokenPath: string): Promise<void> {
    await this.client.create({ ...PODS, namespace: NAMESPACE }, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: pod.name,
        namespace: NAMESPACE,
        labels: { app: pod.app, "bulwark.dev/demo": "true" },
      },
      spec: {
        serviceAccountName: SERVICE_ACCOUNT,
        containers: [
          { name: "app", image: `bulwark-demo/${pod.app}`, ports: [{ containerPort: 8080 }] },
          { name: "bulwark-agent", image: "bulwark" },
        ],
      },
    } as KubeObject);
    await this.setReady(pod.name, true);
    const res = await this.client.request<{ status: { token: string } }>({
      method: "POST",
      path: `/api/v1/namespaces/${NAMESPACE}/serviceaccounts/${SERVICE_ACCOUNT}/token`,
      body: {
        apiVersion: "authentication.k8s.io/v1",
        kind: "TokenRequest",
        spec: {
          audiences: ["bulwark"],
          expirationSeconds: 86_400,
          boundObjectRef: { kind: "Pod", apiVersion: "v1", name: pod.name },
        },
      },
    });
    writeFileSync(tokenPath, res.status.token, { mode: 0o600 });
  }

  /** What the kubelet does when a readiness probe flips: the Pod's Ready condition. */
  async setReady(name: string, ready: boolean): Promise<void> {
    const status = ready ? "True" : "False";
    const now = new Date().toISOString();
    await this.client.patchStatus(
      { ...PODS, namespace: NAMESPACE, name },
      {
        status: {
          phase: "Running",
          podIP: "127.0.0.1",
          conditions: [
            { type: "Ready", status, lastTransitionTime: now },
            { type: "ContainersReady", status, lastTransitionTime: now },
          ],
        },
      },
      "merge",
    );
  }

  async applyPolicies(policies: readonly PolicyObject[]): Promise<void> {
    for (const p of policies)
      await this.client.create({ ...POLICIES, namespace: NAMESPACE }, p as unknown as KubeObject);
  }

  async policies(): Promise<PolicyView[]> {
    const page = await this.client.list({ ...POLICIES, namespace: NAMESPACE });
    return page.items.map((o) => {
      const status = (o as { status?: PolicyStatusLike }).status ?? {};
      const cond = (type: string) => status.conditions?.find((c) => c.type === type);
      return {
        name: o.metadata?.name ?? "",
        accepted: cond("Accepted")?.status ?? "Unknown",
        propagated: cond("Propagated")?.status ?? "Unknown",
        ready: cond("Ready")?.status ?? "Unknown",
        pods: status.pods?.summary ?? `${status.pods?.acked ?? 0}/${status.pods?.selected ?? 0}`,
        generation: o.metadata?.generation,
        observedGeneration: status.observedGeneration,
        quotas: status.quotas ?? [],
        sheddingLevel: status.sheddingLevel,
        message: cond("Ready")?.status === "True" ? undefined : (cond("Ready")?.message ?? undefined),
      };
    });
  }
}

interface PolicyStatusLike {
  observedGeneration?: number;
  conditions?: { type: string; status: string; message?: string }[];
  pods?: { selected?: number; acked?: number; summary?: string };
  quotas?: { pod: string; concurrency?: number; requestsPerSecond?: number }[];
  sheddingLevel?: number;
}
