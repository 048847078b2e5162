// Chaos, API server: the real `bulwark operator` (a child process, its own ServiceAccount token so the dev
// cluster's request log counts its requests apart from the test's) and two real `bulwark agent` processes,
// while the dev cluster drops every watch, compacts its history (resumes get 410), answers a stretch of
// 500/503/429, adds 2 s of latency to every call, and restarts from its --data directory. The policy is
// edited during every fault; after each, the status must reach the latest generation with both pods
// acknowledged and each agent's /config must carry the latest edit (no missed change), and the operator's
// requests during the fault must stay under a bound (no hot loop).
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startDevCluster } from "../../operator/devcluster/server.js";
import {
  Cli,
  LEASES,
  LONG,
  getJson,
  readyAt,
  sleep,
  span,
  startAgentCli,
  startChaosCluster,
  SupervisedOperator,
  until,
  type AgentChild,
  type ChaosCluster,
  type ServedConfig,
} from "./harness.js";

const OPERATOR_USER = "system:serviceaccount:bulwark-system:operator-api";
const PODS = ["web-1", "web-2"];

let kube: ChaosCluster;
let dataDir: string;
let op: SupervisedOperator;
const agents: AgentChild[] = [];
let edit = 0;
/**
 * What each fault cost: requests the operator sent during it, time to converge once it ended, and restarts
 * (a leader that cannot renew its Lease for the renew deadline exits for its pod to be restarted).
 */
const figures: Array<{
  fault: string;
  seconds: number;
  requests: number;
  convergeMs: number;
  restarts: number;
}> = [];
/** The operator's --renew-deadline (its default): faults shorter than this must not cost a restart. */
const RENEW_DEADLINE_MS = 10_000;
/** Operator requests counted by dev cluster instances already stopped (the restart starts a new count). */
let earlierRequests = 0;
const operatorRequests = () => earlierRequests + kube.cluster.requests.countFor(OPERATOR_USER);

const spec = (timeoutMs: number) => ({
  selector: { matchLabels: { app: "web" } },
  upstreams: [
    { name: "payments", host: "payments.shop.svc.cluster.local", port: 8080, timeout: `${timeoutMs}ms` },
  ],
});

/** Edits the policy (a new timeout each time: the edit number is visible in every agent's /config). */
async function editPolicy(): Promise<number> {
  edit++;
  await kube.patchPolicy("web", spec(1000 + edit));
  return 1000 + edit;
}

/** Ready at the latest generation, both pods acked, every agent serving the last edit. */
async function converged(what: string, ms = 60_000): Promise<void> {
  const want = 1000 + edit;
  let seen: unknown;
  try {
    await until(
      `${what}: Ready at the latest generation and timeoutMs ${want} on every agent`,
      async () => {
        const st = await kube.status("web");
        const served = await Promise.all(
          agents.map((a) => getJson<ServedConfig>(a.admin, "/config").catch(() => undefined)),
        );
        seen = {
          st,
          served: served.map((c) => ({ version: c?.version, timeoutMs: c?.config.upstreams[0]?.timeoutMs })),
        };
        return readyAt(st, PODS.length) && served.every((c) => c?.config.upstreams[0]?.timeoutMs === want);
      },
      ms,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; last seen ${JSON.stringify(seen)}; operator: ${op.cli.output.slice(-3000)}`,
      { cause: err },
    );
  }
}

/** Runs a fault: counts the operator's requests from its start until convergence after it ended. */
async function underFault(fault: string, run: () => Promise<void>): Promise<void> {
  const before = operatorRequests();
  const restartsBefore = op.restarts;
  const t0 = Date.now();
  await run();
  const ended = Date.now();
  await converged(fault);
  // And the Lease renewed since: the next fault must not find a renewal already overdue (faults back to
  // back longer than the renew deadline make a leader step down and exit for its pod to restart, by design).
  await until(`${fault}: Lease renewed`, async () => {
    const lease = await kube.client.get({ ...LEASES, namespace: "bulwark-system", name: "bulwark-operator" });
    const spec = lease?.spec as { holderIdentity?: string; renewTime?: string } | undefined;
    return spec?.holderIdentity === "op-api" && Date.parse(spec.renewTime ?? "") > ended;
  });
  const requests = operatorRequests() - before;
  const seconds = (Date.now() - t0) / 1000;
  const restarts = op.restarts - restartsBefore;
  figures.push({ fault, seconds, requests, convergeMs: Date.now() - ended, restarts });
  if (ended - t0 < RENEW_DEADLINE_MS) expect(restarts, `${fault}: operator restarts`).toBe(0);
  // No hot loop: an idle operator renews its Lease every 2 s and keeps a few watches; a fault costs it
  // backed-off retries, not a storm. 10 requests a second on average, plus 30 for the relists and status
  // writes the edit itself needs, is far below what a retry loop without backoff sends (hundreds a second).
  expect(requests, `${fault}: ${requests} requests in ${seconds.toFixed(1)} s`).toBeLessThanOrEqual(
    30 + 10 * seconds,
  );
}

beforeAll(async () => {
  dataDir = mkdtempSync(join("/tmp", "bulwark-chaos-data-"));
  kube = await startChaosCluster({ dataDir });
  for (const p of PODS) await kube.pod(p, { app: "web" });
  await kube.policy("web", spec(1000));
  op = await SupervisedOperator.start(await kube.operatorKubeconfig("api"), "op-api", [
    "--leader-elect=true",
  ]);
  for (const p of PODS) {
    agents.push(
      await startAgentCli([
        "--pod",
        p,
        "--operator",
        op.distributionUrl,
        "--token-file",
        await kube.agentToken(p),
      ]),
    );
  }
  await converged("initial");
}, 120_000);

afterAll(async () => {
  console.log(`chaos figures (api-server): ${JSON.stringify(figures)}`);
  await op?.stop();
  await Cli.killAll();
  await kube?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe("the operator against a faulty API server", () => {
  it("all watches dropped, repeatedly, with edits in between → no change missed", async () => {
    await underFault("watches dropped ×3", async () => {
      for (let i = 0; i < 3; i++) {
        kube.cluster.faults.dropWatches();
        await editPolicy();
        await sleep(200);
      }
    });
  });

  it("history compacted while the watches are down → resumes get 410, the operator relists, no change missed", async () => {
    const expired = kube.cluster.expiredWatches();
    await underFault("history compacted (410)", async () => {
      kube.cluster.faults.holdWatches(true);
      kube.cluster.faults.dropWatches();
      await editPolicy();
      await kube.pod("web-3", { app: "other" }); // more history to lose
      kube.cluster.faults.compact();
      kube.cluster.faults.holdWatches(false);
    });
    expect(kube.cluster.expiredWatches()).toBeGreaterThan(expired);
  });

  it(
    `a stretch of 500, then 503, then 429 (with Retry-After) → converges once it ends, no hot loop`,
    { timeout: span(90_000, 180_000) },
    async () => {
      const each = span(1500, 10_000);
      await underFault(`500/503/429 for ${(3 * each) / 1000} s`, async () => {
        await editPolicy(); // its reconcile and its status writes fall into the stretch
        for (const code of [500, 503, 429] as const) {
          kube.cluster.faults.failNext(1_000_000_000, code);
          await sleep(each);
        }
        kube.cluster.faults.reset();
      });
    },
  );

  it(
    "2 s of latency on every call → converges while it lasts, no hot loop",
    { timeout: 180_000 },
    async () => {
      await underFault("2 s latency on every call", async () => {
        kube.cluster.faults.latency(2000);
        try {
          await editPolicy();
          await converged("under latency", 90_000);
          if (LONG) await sleep(60_000);
        } catch (err) {
          console.log(kube.cluster.requests.writeLog().slice(-40));
          throw err;
        } finally {
          kube.cluster.faults.reset();
        }
      });
    },
  );

  it(
    "the dev cluster restarts from --data (same port, same CA and tokens) with an edit just before → no change missed",
    { timeout: 120_000 },
    async () => {
      const port = kube.cluster.port;
      await underFault("restart with --data", async () => {
        await editPolicy();
        earlierRequests += kube.cluster.requests.countFor(OPERATOR_USER);
        await kube.cluster.stop();
        await sleep(span(1000, 10_000));
        kube.cluster = await startDevCluster({ port, dataDir, bookmarkIntervalSeconds: 1 });
        await editPolicy();
      });
    },
  );
});
