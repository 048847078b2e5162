// The distribution server with scripted agents (the real OperatorConfigSource over loopback sockets) and a
// static token table: push → ACK, NACK, reconnect without re-push, replaced connections, reports.
import { afterEach, describe, expect, it } from "vitest";
import { PROTOCOL_VERSION } from "../../operator/api/agent-protocol.js";
import { generateTls } from "../../operator/devcluster/tls.js";
import { StaticAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import {
  startDistributionServer,
  type DistributionServer,
  type DistributionServerOptions,
} from "../../operator/distribution/distribution-server.js";
import { ScriptedAgent, config, rawClient, tokenFile, until } from "./helpers.js";

const servers: DistributionServer[] = [];
const agents: ScriptedAgent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const auth = new StaticAuthenticator((t) => (t.startsWith("tok:") ? t.slice(4) : undefined));

async function server(opts: Partial<DistributionServerOptions> = {}): Promise<DistributionServer> {
  const s = await startDistributionServer({
    port: 0,
    host: "127.0.0.1",
    authenticator: auth,
    debounce: { quietMs: 20, maxMs: 200 },
    ...opts,
  });
  servers.push(s);
  return s;
}

function agent(
  s: DistributionServer,
  pod: string,
  initialVersion?: string,
  backoff = { baseMs: 20, maxMs: 200 },
): ScriptedAgent {
  const [namespace = "", name = ""] = pod.split("/");
  const a = new ScriptedAgent(
    {
      url: s.url,
      tokenFile: tokenFile(`tok:${pod}`),
      pod: { namespace, name },
      backoff,
    },
    initialVersion,
  );
  agents.push(a);
  return a.start();
}

async function counter(
  s: DistributionServer,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = (await s.metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
}

describe("distribution server", () => {
  it("pushes the desired config; the ACK shows in propagation and fires onChange", async () => {
    const s = await server();
    const changes: string[] = [];
    s.onChange((p) => changes.push(p));
    const a = agent(s, "shop/a");
    await until(() => s.propagation("shop/a").connected, 5000, "connected");
    expect(s.propagation("shop/a")).toEqual({ connected: true });
    s.setDesired("shop/a", config("shop/a", "v1"));
    await until(() => s.propagation("shop/a").ackedVersion === "v1", 5000, "ack");
    expect(a.version).toBe("v1");
    expect(s.propagation("shop/a")).toMatchObject({
      connected: true,
      desiredVersion: "v1",
      ackedVersion: "v1",
    });
    expect(changes.filter((c) => c === "shop/a").length).toBeGreaterThanOrEqual(2); // connect, ack
    expect(await counter(s, "bulwark_distribution_pushes_total", { result: "ack" })).toBe(1);
    expect(await counter(s, "bulwark_agents_connected")).toBe(1);
    expect(await counter(s, "bulwark_distribution_sent_bytes_total")).toBe(s.stats().bytesSent);
  });

  it("serves agents only while accepting (the leader): others get 503 not-leader and retry", async () => {
    let leading = false;
    const s = await server({ accepting: () => leading });
    const attempts: number[] = [];
    const a = new ScriptedAgent({
      url: s.url,
      tokenFile: tokenFile("tok:shop/lead"),
      pod: { namespace: "shop", name: "lead" },
      backoff: { baseMs: 20, maxMs: 200 },
      log: (event, fields) => {
        if (event === "operator-reconnect") attempts.push(fields.attempt as number);
      },
    });
    agents.push(a.start());
    await until(() => attempts.length >= 3, 10_000, "refused three times");
    expect(a.source.lastError).toContain("not-leader");
    // Each refusal is a first attempt again: the backoff does not climb toward its cap.
    expect(new Set(attempts)).toEqual(new Set([1]));
    expect(s.propagation("shop/lead").connected).toBe(false);
    leading = true; // this replica won the lease: the agent's next retry gets through
    s.setDesired("shop/lead", config("shop/lead", "v1"));
    await until(() => s.propagation("shop/lead").ackedVersion === "v1", 5000, "ack after leading");
    expect(a.version).toBe("v1");
  });

  it("an invalid config is NACKed with the reason; the agent keeps its previous config", async () => {
    const s = await server();
    const a = agent(s, "shop/b");
    s.setDesired("shop/b", config("shop/b", "good"));
    await until(() => s.propagation("shop/b").ackedVersion === "good", 5000, "ack");
    const bad = { ...config("shop/b", "bad"), upstreams: [{ name: "x", protocol: "http" }] };
    s.setDesired("shop/b", bad as never);
    await until(() => s.propagation("shop/b").rejected !== undefined, 5000, "nack");
    const p = s.propagation("shop/b");
    expect(p.rejected?.version).toBe("bad");
    expect(p.rejected?.reason).toMatch(/upstreams\[0\]/);
    expect(p.ackedVersion).toBe("good");
    expect(a.version).toBe("good");
    expect(await counter(s, "bulwark_distribution_pushes_total", { result: "nack" })).toBe(1);
    // A later good version clears the rejection.
    s.setDesired("shop/b", config("shop/b", "good2"));
    await until(() => s.propagation("shop/b").ackedVersion === "good2", 5000, "ack2");
    expect(s.propagation("shop/b").rejected).toBeUndefined();
  });

  it("withdrawing (undefined) pushes the empty pass-through config", async () => {
    const s = await server();
    const a = agent(s, "shop/w");
    s.setDesired("shop/w", config("shop/w", "v1"));
    await until(() => a.version === "v1");
    s.setDesired("shop/w", undefined);
    await until(() => a.version !== "v1");
    await until(() => s.propagation("shop/w").ackedVersion === a.version);
    expect(s.propagation("shop/w").desiredVersion).toBe(a.version);
  });

  it("an agent reconnecting with the version it has gets no push; a behind one gets exactly one", async () => {
    const s = await server();
    s.setDesired("shop/c", config("shop/c", "v7"));
    s.setDesired("shop/d", config("shop/d", "v7"));
    s.flush();
    const current = agent(s, "shop/c", "v7");
    const behind = agent(s, "shop/d", "v6");
    await until(() => s.propagation("shop/d").ackedVersion === "v7", 5000, "behind acked");
    await until(() => s.propagation("shop/c").connected);
    expect(s.propagation("shop/c")).toMatchObject({ ackedVersion: "v7", desiredVersion: "v7" });
    expect(current.received).toEqual([]);
    expect(behind.received).toEqual(["v7"]);
    expect(await counter(s, "bulwark_distribution_pushes_total", { result: "ack" })).toBe(1);
  });

  it("pods with the same config share one serialised copy, and each is still pushed its own pod", async () => {
    const s = await server();
    const pods = ["shop/s1", "shop/s2", "shop/s3", "other/s4"];
    const clients = await Promise.all(
      pods.map(async (pod) => {
        const [namespace = "", name = ""] = pod.split("/");
        const c = await rawClient(s.url, `tok:${pod}`, { pod: { namespace, name } });
        await c.next("welcome");
        return c;
      }),
    );
    // other/s4's config names another policy under the same version: it must not get shop's rules.
    for (const pod of pods) s.setDesired(pod, config(pod, "v1"));
    s.flush();
    for (const [i, c] of clients.entries()) {
      const push = await c.next("config");
      expect(push.config).toEqual(config(pods[i]!, "v1"));
      c.send({ type: "ack", version: push.version, nonce: push.nonce });
      c.socket.destroy();
    }
    expect(s.stats().configBodies).toBe(2);
    for (const pod of pods) s.forget(pod);
    expect(s.stats().configBodies).toBe(0);
  });

  it("a new connection for the same pod replaces the old one", async () => {
    const s = await server();
    // The first agent backs off for long after being replaced, so it cannot reconnect and replace the
    // second in turn before the counts are read (it did, on a busy machine).
    const first = agent(s, "shop/e", undefined, { baseMs: 30_000, maxMs: 60_000 });
    await until(() => first.source.state === "connected");
    const second = agent(s, "shop/e");
    await until(() => second.source.state === "connected");
    await until(() => first.source.state !== "connected");
    expect(first.source.lastError).toMatch(/replaced|ended/);
    expect(s.connectedPods()).toEqual(["shop/e"]);
    expect(await counter(s, "bulwark_distribution_disconnects_total", { reason: "replaced" })).toBe(1);
    await first.stop();
  });

  it("keeps the latest report per pod and hands it to listeners", async () => {
    const s = await server();
    const seen: string[] = [];
    s.onReport((p) => seen.push(p));
    const a = agent(s, "shop/r");
    await until(() => a.source.state === "connected");
    const report = (at: number) => ({
      pod: { namespace: "shop", name: "r" },
      activeVersion: undefined,
      appHealth: "healthy" as const,
      upstreams: [
        { upstream: "payments", policy: "shop/p", breaker: "open" as const, inflight: 2, queued: 0 },
      ],
      inbound: { inflight: 1, concurrencyLimit: undefined, sheddingLevel: 0, shedSinceLastReport: 3 },
      at,
    });
    a.source.report(report(1));
    a.source.report(report(2));
    await until(() => s.report("shop/r")?.at === 2);
    expect(s.report("shop/r")).toMatchObject({ appHealth: "healthy", upstreams: [{ breaker: "open" }] });
    expect(seen).toEqual(["shop/r", "shop/r"]);
  });

  it("answers an agent speaking another protocol version with the range it accepts, and counts it", async () => {
    const s = await server();
    const c = await rawClient(s.url, "tok:shop/new", {
      protocol: PROTOCOL_VERSION + 1,
      pod: { namespace: "shop", name: "new" },
    });
    const err = await c.next("error");
    expect(err).toMatchObject({ code: "unsupported-protocol", supported: { min: 1, max: PROTOCOL_VERSION } });
    await until(() => c.closed());
    expect(
      await counter(s, "bulwark_distribution_auth_refusals_total", { reason: "unsupported_protocol" }),
    ).toBe(1);
    expect(s.propagation("shop/new").connected).toBe(false);
  });

  it("serves TLS when given a certificate; the agent verifies it with --operator-ca", async () => {
    const tls = generateTls(["127.0.0.1"], "bulwark-operator");
    const s = await server({ tls: { cert: tls.certPem, key: tls.keyPem } });
    expect(s.url).toMatch(/^https:/);
    const a = new ScriptedAgent({
      url: s.url,
      tokenFile: tokenFile("tok:shop/tls"),
      pod: { namespace: "shop", name: "tls" },
      ca: tls.caPem,
    });
    agents.push(a);
    a.start();
    s.setDesired("shop/tls", config("shop/tls", "v1"));
    await until(() => s.propagation("shop/tls").ackedVersion === "v1", 10_000, "ack over TLS");
    // Without the CA, the agent refuses the operator's certificate and keeps retrying.
    const untrusting = new ScriptedAgent({
      url: s.url,
      tokenFile: tokenFile("tok:shop/tls2"),
      pod: { namespace: "shop", name: "tls2" },
    });
    agents.push(untrusting);
    untrusting.start();
    await until(() => (untrusting.source.lastError ?? "").includes("connect:"), 10_000, "tls refused");
    expect(untrusting.source.connects).toBe(0);
  });
});
