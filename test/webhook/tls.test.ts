// The self-managed certificate against a fake API (tls.ts): first start creates the Secret; a replica that
// loses the create race uses the winner's; a certificate near expiry is reissued under the same CA (so the
// caBundle stays); a Secret without the Service's name is reissued; caBundle patches only what differs.
import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { KubeClient, ResourceRef } from "../../operator/kube/client.js";
import { KubeApiError, type KubeObject } from "../../operator/kube/types.js";
import { ensureSelfManagedTls, patchCaBundle } from "../../operator/webhook/tls.js";

const DAY = 86_400_000;

/** Just the calls tls.ts makes, on a map; `beforeCreate` lets a test slip a rival write in. */
function fakeClient(opts: { beforeCreate?: (store: Map<string, KubeObject>) => void } = {}) {
  const store = new Map<string, KubeObject>();
  const calls: string[] = [];
  let rv = 1;
  const k = (r: ResourceRef, name?: string) => `${r.plural}/${r.namespace ?? ""}/${name ?? r.name ?? ""}`;
  const client = {
    get: async (r: ResourceRef) => {
      calls.push(`get ${r.plural}`);
      return structuredClone(store.get(k(r)));
    },
    create: async (r: ResourceRef, body: KubeObject) => {
      calls.push(`create ${r.plural}`);
      opts.beforeCreate?.(store);
      const key = k(r, body.metadata?.name);
      if (store.has(key)) throw new KubeApiError(409, "exists", { reason: "AlreadyExists" });
      store.set(key, { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } });
      return body;
    },
    replace: async (r: ResourceRef, body: KubeObject) => {
      calls.push(`update ${r.plural}`);
      const cur = store.get(k(r));
      if (cur?.metadata?.resourceVersion !== body.metadata?.resourceVersion)
        throw new KubeApiError(409, "conflict", { reason: "Conflict" });
      store.set(k(r), { ...body, metadata: { ...body.metadata, resourceVersion: String(rv++) } });
      return body;
    },
    patch: async (r: ResourceRef, ops: { op: string; path: string; value: unknown }[]) => {
      calls.push(`patch ${r.plural}`);
      const cur = store.get(k(r)) as KubeObject & { webhooks: { clientConfig: Record<string, unknown> }[] };
      for (const o of ops) {
        const m = /^\/webhooks\/(\d+)\/clientConfig\/caBundle$/.exec(o.path);
        if (m)
          (cur.webhooks[Number(m[1])] as { clientConfig: Record<string, unknown> }).clientConfig.caBundle =
            o.value;
      }
      return cur;
    },
  };
  return { client: client as unknown as KubeClient, store, calls };
}

const base = { namespace: "bulwark-system", secretName: "bulwark-webhook-tls", service: "bulwark" };

describe("ensureSelfManagedTls", () => {
  it("creates the Secret on first start, then reuses it", async () => {
    const f = fakeClient();
    const a = await ensureSelfManagedTls({ ...base, client: f.client });
    expect(f.calls).toEqual(["get secrets", "create secrets"]);
    const cert = new X509Certificate(a.certPem);
    expect(cert.checkHost("bulwark.bulwark-system.svc")).toBeDefined();
    expect(cert.checkIssued(new X509Certificate(a.caPem))).toBe(true);
    const b = await ensureSelfManagedTls({ ...base, client: f.client });
    expect(b).toEqual(a);
    expect(f.calls.slice(2)).toEqual(["get secrets"]);
  });

  it("a replica that loses the create race serves the winner's certificate", async () => {
    const winner = fakeClient();
    const won = await ensureSelfManagedTls({ ...base, client: winner.client });
    const f = fakeClient({
      beforeCreate: (store) => {
        if (store.size === 0) for (const [k, v] of winner.store) store.set(k, v);
      },
    });
    const lost = await ensureSelfManagedTls({ ...base, client: f.client });
    expect(lost.certPem).toBe(won.certPem);
    expect(f.calls).toEqual(["get secrets", "create secrets", "get secrets"]);
  });

  it("reissues a certificate within renewBefore of expiry under the same CA", async () => {
    const f = fakeClient();
    const start = Date.now();
    const first = await ensureSelfManagedTls({ ...base, client: f.client, now: () => start });
    const later = start + 340 * DAY; // 25 days before the 365-day certificate ends
    const second = await ensureSelfManagedTls({ ...base, client: f.client, now: () => later });
    expect(second.certPem).not.toBe(first.certPem);
    expect(second.caPem).toBe(first.caPem);
    expect(f.calls).toEqual(["get secrets", "create secrets", "get secrets", "update secrets"]);
  });

  it("reissues when the Service name changed", async () => {
    const f = fakeClient();
    const first = await ensureSelfManagedTls({ ...base, client: f.client });
    const renamed = await ensureSelfManagedTls({ ...base, service: "resilience", client: f.client });
    expect(renamed.certPem).not.toBe(first.certPem);
    expect(new X509Certificate(renamed.certPem).checkHost("resilience.bulwark-system.svc")).toBeDefined();
  });
});

describe("patchCaBundle", () => {
  it("sets every webhook's caBundle once, and patches nothing when it is already set", async () => {
    const f = fakeClient();
    f.store.set("mutatingwebhookconfigurations//inj", {
      metadata: { name: "inj" },
      webhooks: [
        { name: "a", clientConfig: {} },
        { name: "b", clientConfig: { caBundle: "old" } },
      ],
    } as KubeObject);
    expect(await patchCaBundle(f.client, "mutating", "inj", "PEM")).toBe(true);
    const cfg = f.store.get("mutatingwebhookconfigurations//inj") as unknown as {
      webhooks: { clientConfig: { caBundle: string } }[];
    };
    expect(cfg.webhooks.map((w) => Buffer.from(w.clientConfig.caBundle, "base64").toString())).toEqual([
      "PEM",
      "PEM",
    ]);
    expect(await patchCaBundle(f.client, "mutating", "inj", "PEM")).toBe(false);
    expect(f.calls.filter((c) => c.startsWith("patch"))).toHaveLength(1);
    await expect(patchCaBundle(f.client, "validating", "missing", "PEM")).rejects.toThrow(/not found/);
  });
});
