// Chaos, operator: two `bulwark operator` replicas (child processes, leader election with a 3 s lease, each
// with its own ServiceAccount so the dev cluster's write log names who wrote what) behind a Service stand-in,
// and two `bulwark agent` processes enforcing a policy that visibly shapes traffic: every call to an upstream
// that always answers 503 is tried twice and then served the policy's static fallback. The leader is
// SIGKILLed right after an edit (mid-reconcile, mid-push), a new one must lead within the lease duration,
// and no status write may ever come from a replica that did not hold the Lease. Then every operator goes
// away: the agents keep enforcing the same config and traffic is answered exactly as before; operators back
// → nothing is pushed again.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Cli,
  FAST_LEASE,
  LEASES,
  freePort,
  getJson,
  metric,
  readyAt,
  request,
  scrape,
  sleep,
  span,
  startAgentCli,
  startChaosCluster,
  startOperatorCli,
  until,
  type AgentChild,
  type ChaosCluster,
  type OperatorChild,
  type ServedConfig,
  webPolicySpec,
} from "./harness.js";
import { TcpBalancer } from "./tcp-balancer.js";

const PODS = ["web-1", "web-2"];
const LEASE_MS = 3000;
const IDS = ["a", "b"] as const;

let kube: ChaosCluster;
let upstream: http.Server;
let upstreamHits = 0;
let service: TcpBalancer;
const ports: Record<string, number> = {};
const kubeconfigs: Record<string, string> = {};
const ops: Record<string, OperatorChild | undefined> = {};
const agents: AgentChild[] = [];
let edit = 0;
const figures: Record<string, unknown> = {};

const spec = (timeoutMs: number) => webPolicySpec((upstream.address() as AddressInfo).port, timeoutMs);

const operatorUser = (id: string) => `system:serviceaccount:bulwark-system:operator-${id}`;

async function startOp(id: string): Promise<OperatorChild> {
  const o = await startOperatorCli(kubeconfigs[id] ?? "", id, ports[id] ?? 0, FAST_LEASE);
  ops[id] = o;
  return o;
}

async function holder(): Promise<string | undefined> {
  const lease = await kube.client.get({ ...LEASES, namespace: "bulwark-system", name: "bulwark-operator" });
  return (lease?.spec as { holderIdentity?: string } | undefined)?.holderIdentity;
}

async function served(a: AgentChild): Promise<ServedConfig | undefined> {
  return getJson<ServedConfig>(a.admin, "/config").catch(() => undefined);
}

async function converged(what: string, ms = 45_000): Promise<void> {
  const want = 1000 + edit;
  await until(
    `${what}: Ready at the latest generation and timeoutMs ${want} on every agent`,
    async () => {
      if (!readyAt(await kube.status("web"), PODS.length)) return false;
      for (const a of agents) if ((await served(a))?.config.upstreams[0]?.timeoutMs !== want) return false;
      return true;
    },
    ms,
  );
}

async function editPolicy(): Promise<void> {
  edit++;
  await kube.patchPolicy("web", spec(1000 + edit));
}

/** One call through an agent's outbound listener to the always-503 upstream. */
async function call(a: AgentChild) {
  const r = await request(a.outbound, {
    host: `127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    timeoutMs: 10_000,
  });
  return { status: r.status, body: r.body, attempts: r.headers["x-bulwark-attempts"], ms: r.ms };
}

beforeAll(async () => {
  upstream = http.createServer((_req, res) => {
    upstreamHits++;
    res.writeHead(503, { "content-type": "text/plain" }).end("down");
  });
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  kube = await startChaosCluster();
  for (const p of PODS) await kube.pod(p, { app: "web" });
  await kube.policy("web", spec(1000));
  for (const id of IDS) {
    ports[id] = await freePort();
    kubeconfigs[id] = await kube.operatorKubeconfig(id);
  }
  service = await new TcpBalancer(IDS.map((id) => ports[id] ?? 0)).start();
  await Promise.all(IDS.map((id) => startOp(id)));
  for (const p of PODS) {
    agents.push(
      await startAgentCli(["--pod", p, "--operator", service.url, "--token-file", await kube.agentToken(p)]),
    );
  }
  await converged("initial");
}, 120_000);

afterAll(async () => {
  console.log(`chaos figures (operator): ${JSON.stringify(figures)}`);
  await Cli.killAll();
  await service?.stop();
  await kube?.stop();
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
});

describe("operator replicas killed", () => {
  it(
    "the leader SIGKILLed right after an edit → a new leader within the lease duration, the edit reaches status and every agent",
    { timeout: 120_000 },
    async () => {
      const leader = await until("a leader", holder);
      const standby = leader === "a" ? "b" : "a";
      await editPolicy();
      await sleep(Math.floor(Math.random() * 100)); // somewhere in the reconcile / debounce / push
      const killedAt = Date.now();
      await ops[leader]?.cli.kill("SIGKILL");
      await until("the standby leads", async () => (await holder()) === standby, LEASE_MS + 10_000);
      const takeoverMs = Date.now() - killedAt;
      figures.takeoverMs = takeoverMs;
      // Expiry is judged from when the standby last saw the record change: a lease duration plus a retry
      // period or two, plus the poll.
      expect(takeoverMs).toBeLessThan(LEASE_MS + 2000);
      await startOp(leader); // the pod restarts, as a standby now
      await converged("after failover");
      figures.convergeAfterKillMs = Date.now() - killedAt;
    },
  );

  it(
    "SIGKILL of the leader again right after the next edit (the push in flight) → converges, no policy lost",
    { timeout: 120_000 },
    async () => {
      const leader = await until("a leader", holder);
      await editPolicy();
      await sleep(150); // past the 100 ms debounce: the push is on the wire or its ACK on the way back
      const killedAt = Date.now();
      await ops[leader]?.cli.kill("SIGKILL");
      await startOp(leader);
      await converged("after a kill mid-push");
      figures.convergeAfterKillMidPushMs = Date.now() - killedAt;
    },
  );

  it("status was only ever written by the replica holding the Lease (never two leaders writing)", () => {
    const log = kube.cluster.requests.writeLog();
    const isLease = (p: string) => p.endsWith("/leases/bulwark-operator") || p.endsWith("/leases");
    const isStatus = (p: string) => /\/resiliencepolicies\/[^/]+\/status$/.test(p);
    let current: string | undefined;
    let statusWrites = 0;
    const writers = new Set<string>();
    for (const w of log) {
      const ok = w.code >= 200 && w.code < 300;
      if (!ok) continue;
      if (isLease(w.path) && w.path.includes("bulwark-system")) current = w.user;
      else if (isStatus(w.path) && w.user.startsWith("system:serviceaccount:bulwark-system:")) {
        statusWrites++;
        writers.add(w.user);
        expect(w.user, `status write at ${w.at} by a replica not holding the Lease`).toBe(current);
      }
    }
    figures.statusWrites = statusWrites;
    expect(statusWrites).toBeGreaterThan(0);
    // Both replicas led at some point (the failovers happened), each writing only while it led.
    expect([...writers].sort()).toEqual(IDS.map(operatorUser).sort());
  });
});

describe("every operator down", () => {
  it(
    "agents keep enforcing their last-known-good config; traffic is answered exactly as before; back → no re-push",
    { timeout: span(180_000, 480_000) },
    async () => {
      await converged("before");
      const before = await Promise.all(agents.map(served));
      // The policy shapes every call: two tries (x-bulwark-attempts: 2), then the static fallback.
      const expected = { status: 200, body: '{"degraded":true}', attempts: "2" };
      const hits0 = upstreamHits;
      for (const a of agents) expect(await call(a)).toMatchObject(expected);
      expect(upstreamHits - hits0).toBe(2 * agents.length);

      for (const id of IDS) await ops[id]?.cli.kill("SIGKILL");
      const downFor = span(3000, 180_000);
      const end = Date.now() + downFor;
      let calls = 0;
      let maxMs = 0;
      const hits1 = upstreamHits;
      while (Date.now() < end) {
        for (const a of agents) {
          const r = await call(a);
          calls++;
          maxMs = Math.max(maxMs, r.ms);
          // Not one call lost or answered differently while the control plane is gone.
          expect(r).toMatchObject(expected);
        }
        await sleep(100);
      }
      expect(upstreamHits - hits1).toBe(2 * calls);
      const during = await Promise.all(agents.map(served));
      expect(during.map((c) => [c?.version, c?.appliedAt])).toEqual(
        before.map((c) => [c?.version, c?.appliedAt]),
      );
      figures.operatorsDown = { seconds: downFor / 1000, calls, lost: 0, maxCallMs: Math.round(maxMs) };

      // Back: each agent reconnects, the leader sees their ACKs of the version they run, pushes nothing.
      const backAt = Date.now();
      await Promise.all(IDS.map((id) => startOp(id)));
      // While no operator answered (and until the dead holder's Lease expired, the replicas answered 503
      // not-leader), each agent backed off, full jitter capped at 30 s: reconnecting may take the restart,
      // the lease duration and up to two of those capped waits (one more if an attempt lands mid-handover).
      let seen: number[] = [];
      await until(
        "both agents connected again",
        async () => {
          seen = [];
          for (const id of IDS)
            seen.push(metric(await scrape(ops[id]?.metricsUrl ?? ""), "bulwark_agents_connected"));
          return seen.reduce((a, b) => a + b, 0) === agents.length;
        },
        90_000,
      ).catch((err: unknown) => {
        const tail = agents.map((a) => a.cli.output.split("\n").slice(-6).join("\n")).join("\n---\n");
        throw new Error(`${String(err)}; connected per replica ${JSON.stringify(seen)}; agents:\n${tail}`);
      });
      await converged("after the operators came back");
      figures.reconvergedAfterOperatorsBackMs = Date.now() - backAt;
      await sleep(1500); // a debounce window and more: a push, if one were coming, would be out
      let pushes = 0;
      for (const id of IDS)
        pushes += metric(await scrape(ops[id]?.metricsUrl ?? ""), "bulwark_distribution_pushes_total");
      expect(pushes).toBe(0);
      const after = await Promise.all(agents.map(served));
      expect(after.map((c) => [c?.version, c?.appliedAt])).toEqual(
        before.map((c) => [c?.version, c?.appliedAt]),
      );
      for (const a of agents) expect(await call(a)).toMatchObject(expected);
    },
  );
});
