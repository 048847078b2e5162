// The embedded dev cluster for the distribution tests: ServiceAccounts, pods and the tokens they get
// (TokenRequest with an audience and a bound Pod), verified by the server through real TokenReview.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDevCluster, type DevCluster } from "../../operator/devcluster/server.js";
import { KubeClient, loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";

export interface TestCluster {
  readonly cluster: DevCluster;
  readonly client: KubeClient;
  /** Creates the namespace and a ServiceAccount `agent` in it. */
  namespace(name: string): Promise<void>;
  pod(ns: string, name: string): Promise<KubeObject>;
  deletePod(ns: string, name: string): Promise<void>;
  /** A token of ServiceAccount `agent` for `audience`, bound to `pod` when given. */
  token(ns: string, opts: { audience?: string; pod?: string }): Promise<string>;
  stop(): Promise<void>;
}

export async function startTestCluster(): Promise<TestCluster> {
  const cluster = await startDevCluster({ port: 0 });
  const dir = mkdtempSync(join(tmpdir(), "bulwark-dist-kube-"));
  const path = join(dir, "kubeconfig");
  writeFileSync(path, cluster.kubeconfigFor());
  const client = new KubeClient(loadKubeConfig({ kubeconfigPath: path }), { requestTimeoutMs: 10_000 });
  return {
    cluster,
    client,
    async namespace(name) {
      await client.create(
        { version: "v1", plural: "namespaces" },
        { apiVersion: "v1", kind: "Namespace", metadata: { name } },
      );
      await client.create(
        { version: "v1", plural: "serviceaccounts", namespace: name },
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "agent", namespace: name } },
      );
    },
    pod(ns, name) {
      return client.create({ version: "v1", plural: "pods", namespace: ns }, {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name, namespace: ns },
        spec: { serviceAccountName: "agent", containers: [{ name: "app", image: "app" }] },
      } as KubeObject);
    },
    async deletePod(ns, name) {
      await client.request({ method: "DELETE", path: `/api/v1/namespaces/${ns}/pods/${name}` });
    },
    async token(ns, opts) {
      const res = await client.request<{ status: { token: string } }>({
        method: "POST",
        path: `/api/v1/namespaces/${ns}/serviceaccounts/agent/token`,
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: {
            audiences: [opts.audience ?? "bulwark"],
            expirationSeconds: 3600,
            ...(opts.pod ? { boundObjectRef: { kind: "Pod", apiVersion: "v1", name: opts.pod } } : {}),
          },
        },
      });
      return res.status.token;
    },
    stop: () => cluster.stop(),
  };
}
