// Who may see what. The agent's admin paths that reveal its config answer 403 to other hosts unless
// --admin-expose; the webhooks speak TLS only; the distribution endpoint refuses malformed credentials and
// never hands one pod's config to another's agent; and an agent's bearer token never shows up in the
// operator's log lines, its metrics or a policy's status. (The TokenReview refusals themselves, forged,
// unbound, wrong-audience and wrong-pod tokens, are in test/distribution/auth.test.ts.)
import http from "node:http";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { Agent } from "../../operator/agent/agent.js";
import { loadSettings, SettingsError, type AgentSettings } from "../../operator/agent/settings.js";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  type OperatorMessage,
} from "../../operator/api/agent-protocol.js";
import { distributionServerFactory } from "../../operator/app/distribution.js";
import { POLICIES, startOperator, type RunningOperator } from "../../operator/app/operator.js";
import { generateTls } from "../../operator/devcluster/tls.js";
import { StaticAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import {
  startDistributionServer,
  type DistributionServer,
} from "../../operator/distribution/distribution-server.js";
import { loadKubeConfig } from "../../operator/kube/client.js";
import type { KubeObject } from "../../operator/kube/types.js";
import { ManualClock, seededRandom } from "../../operator/resilience/clock.js";
import { startWebhookServer } from "../../operator/webhook/server.js";
import { MemorySource, makeConfig, upstreamRule } from "../agent/harness.js";
import { startTestCluster, type TestCluster } from "../distribution/cluster.js";
import { ScriptedAgent, config, rawClient, tokenFile, until } from "../distribution/helpers.js";
import { runs } from "./arbitraries.js";

const ROOT = resolve(import.meta.dirname, "../..");

/** This machine's first non-loopback IPv4 address (a peer the admin listener must treat as another host). */
function externalAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === "IPv4" && !a.internal) return a.address;
  }
  return undefined;
}

function get(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = http.request({ host, port, path, agent: false, localAddress: host }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("agent admin endpoints: localhost only unless --admin-expose", () => {
  const external = externalAddress();
  const agents: Agent[] = [];
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((a) => a.stop(100)));
  });

  async function startOn0000(adminExpose: boolean | undefined): Promise<Agent> {
    const settings: AgentSettings = {
      configFile: undefined,
      operatorUrl: undefined,
      tokenFile: undefined,
      pod: "checkout-1",
      namespace: "shop",
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      appPort: 8080,
      stateDir: undefined,
      // What a pod runs with: admin (and inbound) on every address, so Prometheus and the kubelet reach it.
      listenAddress: "0.0.0.0",
      stateMaxAgeMs: 600_000,
      ...(adminExpose === undefined ? {} : { adminExpose }),
    };
    const agent = new Agent({
      settings,
      source: new MemorySource(makeConfig([upstreamRule("payments", 9)])),
      clock: new ManualClock(1_000_000),
      random: seededRandom(1),
      logWrite: () => undefined,
    });
    agents.push(agent);
    await agent.start();
    return agent;
  }

  it.skipIf(external === undefined)(
    "answers /config and /status with 403 to another host, and serves /metrics, /healthz, /readyz to it",
    async () => {
      const host = external as string;
      const agent = await startOn0000(undefined);
      const port = agent.ports.admin;
      for (const path of ["/config", "/status", "/config?x=1"]) {
        const r = await get(host, port, path);
        expect(r.status, path).toBe(403);
        expect(r.body).toContain("--admin-expose");
        expect(r.body).not.toContain("payments");
      }
      for (const path of ["/metrics", "/healthz", "/readyz"])
        expect((await get(host, port, path)).status, path).toBe(200);
      // The same paths from inside the pod (loopback) are served.
      expect((await get("127.0.0.1", port, "/config")).status).toBe(200);
      expect((await get("127.0.0.1", port, "/status")).status).toBe(200);
    },
  );

  it.skipIf(external === undefined)(
    "serves /config and /status to another host with --admin-expose",
    async () => {
      const agent = await startOn0000(true);
      const r = await get(external as string, agent.ports.admin, "/config");
      expect(r.status).toBe(200);
      expect(r.body).toContain("payments");
      expect((await get(external as string, agent.ports.admin, "/status")).status).toBe(200);
    },
  );

  it("reads --admin-expose and BULWARK_ADMIN_EXPOSE, default off, and refuses a value that is not a boolean", () => {
    const base = ["--config", "c.yaml"];
    expect(loadSettings(base, {}).adminExpose).toBe(false);
    expect(loadSettings([...base, "--admin-expose"], {}).adminExpose).toBe(true);
    expect(loadSettings(base, { BULWARK_ADMIN_EXPOSE: "true" }).adminExpose).toBe(true);
    expect(loadSettings(base, { BULWARK_ADMIN_EXPOSE: "false" }).adminExpose).toBe(false);
    expect(() => loadSettings(base, { BULWARK_ADMIN_EXPOSE: "yes please" })).toThrow(SettingsError);
  });

  if (external === undefined) {
    it.skip("(the two tests above need a non-loopback IPv4 address on this machine; none was found)", () =>
      undefined);
  }
});

describe("webhooks are TLS-only", () => {
  it("a plain-HTTP request to the webhook port gets no answer, however it is phrased", async () => {
    const tls = generateTls(["127.0.0.1"]);
    const server = await startWebhookServer({ port: 0, host: "127.0.0.1", tls });
    try {
      const body = JSON.stringify({ request: { uid: "u", operation: "CREATE", object: {} } });
      for (const [method, path] of [
        ["POST", "/validate"],
        ["POST", "/inject"],
        ["GET", "/healthz"],
      ] as const) {
        const outcome = await new Promise<string>((resolvePromise) => {
          const req = http.request(
            {
              host: "127.0.0.1",
              port: server.port,
              method,
              path,
              agent: false,
              headers: { "content-type": "application/json" },
            },
            (res) => {
              res.resume();
              resolvePromise(`status ${res.statusCode ?? 0}`);
            },
          );
          req.on("error", (e: NodeJS.ErrnoException) => resolvePromise(`error ${e.code ?? e.message}`));
          req.setTimeout(3000, () => req.destroy(new Error("timeout")));
          req.end(method === "POST" ? body : undefined);
        });
        // Node's TLS server may answer a plain request with a bare 400 before closing; never a 2xx.
        expect(outcome, `${method} ${path}`).toMatch(/^error |^status 4\d\d$/);
      }
    } finally {
      await server.close();
    }
  });
});

describe("distribution: credentials and isolation", () => {
  let server: DistributionServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });
  const auth = new StaticAuthenticator((t) => (t.startsWith("tok:") ? t.slice(4) : undefined));

  function upgradeWith(url: string, authorization: string | undefined): Promise<number> {
    return new Promise((resolvePromise, reject) => {
      const req = http.request(`${url}${DISTRIBUTION_PATH}`, {
        headers: {
          connection: "Upgrade",
          upgrade: DISTRIBUTION_UPGRADE,
          ...(authorization === undefined ? {} : { authorization }),
        },
        agent: false,
      });
      req.on("upgrade", (res, socket) => {
        socket.destroy();
        resolvePromise(res.statusCode ?? 0);
      });
      req.on("response", (res) => {
        res.resume();
        resolvePromise(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
  }

  it("refuses malformed Authorization headers: no scheme, another scheme, an empty token, junk around it", async () => {
    server = await startDistributionServer({ port: 0, host: "127.0.0.1", authenticator: auth });
    const cases: (string | undefined)[] = [
      undefined,
      "",
      "Bearer",
      "Bearer ",
      "tok:shop/a",
      "Basic dG9rOnNob3AvYQ==",
      "Bearer tok:shop/a extra",
      "Bearer\ttok:shop/a\tx",
      "Token tok:shop/a",
      "Bearer toK:shop/a",
    ];
    for (const authorization of cases) {
      const status = await upgradeWith(server.url, authorization);
      expect(status, JSON.stringify(authorization)).toBeGreaterThanOrEqual(400);
    }
    expect(await upgradeWith(server.url, "Bearer tok:shop/a")).toBe(101);
  });

  it("never sends a pod's config to another pod's agent, whatever the pods and configs", async () => {
    server = await startDistributionServer({
      port: 0,
      host: "127.0.0.1",
      authenticator: auth,
      debounce: { quietMs: 0, maxMs: 0 },
    });
    const s = server;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,6}$/), { minLength: 2, maxLength: 4 }),
        fc.nat(1000),
        async (names, seed) => {
          const pods = names.map((n) => `shop${seed % 3}/${n}`);
          const clients = await Promise.all(
            pods.map((p) => {
              const [namespace = "", name = ""] = p.split("/");
              return rawClient(s.url, `tok:${p}`, { pod: { namespace, name } });
            }),
          );
          // An impostor: the first pod's token claiming the second pod.
          const [ns1 = "", n1 = ""] = (pods[1] as string).split("/");
          const impostor = await rawClient(s.url, `tok:${pods[0] as string}`, {
            pod: { namespace: ns1, name: n1 },
          });
          try {
            await Promise.all(clients.map((c) => c.next("welcome")));
            for (const p of pods) s.setDesired(p, config(p, `v-${p.replace("/", "-")}-${seed}`));
            s.flush();
            await Promise.all(clients.map((c) => c.next("config")));
            clients.forEach((c, i) => {
              const [namespace, name] = (pods[i] as string).split("/");
              for (const m of c.messages.filter(
                (x): x is Extract<OperatorMessage, { type: "config" }> => x.type === "config",
              ))
                expect((m.config as { pod: unknown }).pod).toEqual({ namespace, name });
            });
            expect(await impostor.next("error")).toMatchObject({ code: "forbidden" });
            expect(impostor.messages.some((m) => m.type === "config")).toBe(false);
          } finally {
            for (const c of [...clients, impostor]) c.socket.destroy();
            for (const p of pods) s.forget(p);
          }
        },
      ),
      { numRuns: runs(8, 0.01) },
    );
  });
});

describe("secrets never in the operator's logs, metrics or a policy's status", () => {
  let kube: TestCluster | undefined;
  let op: RunningOperator | undefined;
  let agent: ScriptedAgent | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    await agent?.stop();
    await op?.stop();
    await kube?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("an agent's bearer token (accepted or refused) appears in no log line, metric or status", async () => {
    kube = await startTestCluster();
    await kube.namespace("shop");
    await kube.client.create(
      { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions" },
      parse(
        readFileSync(join(ROOT, "crds/resilience.bulwark.dev_resiliencepolicies.yaml"), "utf8"),
      ) as KubeObject,
    );
    await kube.client.create({ version: "v1", plural: "pods", namespace: "shop" }, {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "web-1", namespace: "shop", labels: { app: "web" } },
      spec: { serviceAccountName: "agent", containers: [{ name: "app", image: "app" }] },
    } as KubeObject);
    await kube.pod("shop", "web-2");
    dir = mkdtempSync(join(tmpdir(), "bulwark-secrets-"));
    const kubeconfigPath = join(dir, "kubeconfig");
    writeFileSync(kubeconfigPath, kube.cluster.kubeconfigFor());

    // Every line the operator logs, at every level, and every distribution event (as `bulwark operator`
    // wires them), captured as the text a log shipper would see.
    const lines: string[] = [];
    const capture = (level: string) => (msg: string, fields?: Record<string, unknown>) =>
      void lines.push(`${level} ${msg} ${JSON.stringify(fields ?? {})}`);
    let server: DistributionServer | undefined;
    op = await startOperator({
      kubeConfig: loadKubeConfig({ kubeconfigPath }),
      leaderElection: false,
      distributionPort: 0,
      distributor: distributionServerFactory({
        host: "127.0.0.1",
        onStarted: (s) => (server = s),
        log: (event, fields) => capture("debug")(event, fields),
      }),
      logger: {
        info: capture("info"),
        warn: capture("warn"),
        error: capture("error"),
        debug: capture("debug"),
      },
    });
    await op.synced;

    const token = await kube.token("shop", { pod: "web-1" });
    const otherPodsToken = await kube.token("shop", { pod: "web-2" });
    const url = server?.url ?? "";
    agent = new ScriptedAgent({
      url,
      tokenFile: tokenFile(token),
      pod: { namespace: "shop", name: "web-1" },
      backoff: { baseMs: 50, maxMs: 500 },
    }).start();
    // Refused attempts too: a token with junk appended, and another pod's token claiming web-1.
    const refusedToken = `${token}x`;
    const refused = new ScriptedAgent({
      url,
      tokenFile: tokenFile(refusedToken),
      pod: { namespace: "shop", name: "web-1" },
      backoff: { baseMs: 5000, maxMs: 5000 },
    }).start();
    const impostor = new ScriptedAgent({
      url,
      tokenFile: tokenFile(otherPodsToken),
      pod: { namespace: "shop", name: "web-1" },
      backoff: { baseMs: 5000, maxMs: 5000 },
    }).start();
    try {
      await until(() => (refused.source.lastError ?? "") !== "", 10_000, "the bad token refused");
      await until(
        () => (impostor.source.lastError ?? "").includes("forbidden"),
        10_000,
        "the impostor refused",
      );
    } finally {
      await refused.stop();
      await impostor.stop();
    }
    await kube.client.create({ ...POLICIES, namespace: "shop" }, {
      apiVersion: "resilience.bulwark.dev/v1alpha1",
      kind: "ResiliencePolicy",
      metadata: { name: "web", namespace: "shop" },
      spec: {
        selector: { matchLabels: { app: "web" } },
        upstreams: [{ name: "payments", host: "payments", port: 8080 }],
      },
    } as KubeObject);
    const policy = await until2(async () => {
      const p = await kube?.client.get({ ...POLICIES, namespace: "shop", name: "web" });
      const ready = (
        p?.status as { conditions?: { type: string; status: string }[] } | undefined
      )?.conditions?.find((c) => c.type === "Ready");
      return ready?.status === "True" ? p : undefined;
    });

    const metrics = await op.metrics.registry.metrics();
    const haystacks = { logs: lines.join("\n"), status: JSON.stringify(policy), metrics };
    expect(lines.length).toBeGreaterThan(0);
    expect(haystacks.logs).toContain("agent-refused"); // the refusals were logged, just not the tokens
    for (const secret of [token, refusedToken, otherPodsToken]) {
      // The whole token, and its signature (the part that makes it usable) on its own.
      const signature = secret.split(".").at(-1) ?? secret;
      for (const [where, text] of Object.entries(haystacks)) {
        expect(text.includes(secret), `token in ${where}`).toBe(false);
        expect(text.includes(signature), `token signature in ${where}`).toBe(false);
      }
    }
  }, 60_000);
});

async function until2<T>(fn: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error("policy not Ready in time");
    await new Promise((r) => setTimeout(r, 50));
  }
}
