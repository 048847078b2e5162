// Chaos, agents: a `bulwark agent` process SIGKILLed and restarted while the operator is down (it must serve
// its persisted last-known-good config at once, before any operator answers); its connection to the operator
// cut in the middle of a push (a half-received message is never applied; the agent reconnects and gets the
// edit); and a stalled agent that connects, says hello and never reads again while the operator pushes it
// megabytes (the operator drops it, its memory stays bounded, the healthy agent keeps converging); and an agent
// killed while its policy changes (its pod counts as pending until it is back and ACKs).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  PROTOCOL_VERSION,
} from "../../operator/api/agent-protocol.js";
import {
  Cli,
  LONG,
  MiB,
  NS,
  freePort,
  getJson,
  metric,
  procStats,
  readyAt,
  request,
  scrape,
  sleep,
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

let kube: ChaosCluster;
let upstream: http.Server;
let service: TcpBalancer;
let opPort: number;
let kubeconfig: string;
let op: OperatorChild;
let agent: AgentChild;
let stateDir: string;
let tokenFile: string;
let edit = 0;
const figures: Record<string, unknown> = {};

const spec = (timeoutMs: number) => webPolicySpec((upstream.address() as AddressInfo).port, timeoutMs);

async function startOp(): Promise<void> {
  op = await startOperatorCli(kubeconfig, "op-agents", opPort, ["--leader-elect=false"]);
}

function startAgent(): Promise<AgentChild> {
  return startAgentCli([
    "--pod",
    "web-1",
    "--operator",
    service.url,
    "--token-file",
    tokenFile,
    "--state-dir",
    stateDir,
  ]);
}

async function editPolicy(): Promise<void> {
  edit++;
  await kube.patchPolicy("web", spec(1000 + edit));
}

async function converged(what: string, ms = 45_000): Promise<void> {
  const want = 1000 + edit;
  await until(
    `${what}: Ready at the latest generation and timeoutMs ${want} on the agent`,
    async () =>
      readyAt(await kube.status("web"), 1) &&
      (await getJson<ServedConfig>(agent.admin, "/config"))?.config.upstreams[0]?.timeoutMs === want,
    ms,
  );
}

async function call() {
  const r = await request(agent.outbound, {
    host: `127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    timeoutMs: 10_000,
  });
  return { status: r.status, body: r.body, attempts: r.headers["x-bulwark-attempts"] };
}
const EXPECTED = { status: 200, body: '{"degraded":true}', attempts: "2" };

beforeAll(async () => {
  upstream = http.createServer((_req, res) => res.writeHead(503).end("down"));
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
  kube = await startChaosCluster();
  await kube.pod("web-1", { app: "web" });
  await kube.pod("stuck-1", { app: "stuck" });
  await kube.policy("web", spec(1000));
  opPort = await freePort();
  kubeconfig = await kube.operatorKubeconfig("agents");
  service = await new TcpBalancer([opPort]).start();
  await startOp();
  stateDir = mkdtempSync(join(tmpdir(), "bulwark-chaos-state-"));
  tokenFile = await kube.agentToken("web-1");
  agent = await startAgent();
  await converged("initial");
}, 120_000);

afterAll(async () => {
  console.log(`chaos figures (agents): ${JSON.stringify(figures)}`);
  await Cli.killAll();
  await service?.stop();
  await kube?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
});

describe("agents under faults", () => {
  it(
    "SIGKILLed and restarted with the operator down → serves its persisted config before any operator answers",
    { timeout: 120_000 },
    async () => {
      const before = await getJson<ServedConfig>(agent.admin, "/config");
      expect(await call()).toMatchObject(EXPECTED);
      await op.cli.kill("SIGKILL");
      await agent.cli.kill("SIGKILL");
      const t0 = Date.now();
      agent = await startAgent();
      const restored = await until(
        "config served",
        () => getJson<ServedConfig>(agent.admin, "/config"),
        10_000,
      );
      figures.resumeFromStateDirMs = Date.now() - t0; // process start included
      expect(restored).toMatchObject({
        version: before?.version,
        origin: expect.stringMatching(/^state-dir:/),
      });
      expect(await call()).toMatchObject(EXPECTED);
      expect(agent.cli.lines().some((l) => l.event === "operator-connected")).toBe(false);

      // The operator back: it learns the version from the hello and pushes nothing.
      await startOp();
      await agent.cli.line("reconnected", (l) => l.event === "operator-connected", 45_000);
      await converged("after the operator came back");
      await sleep(1200);
      expect(metric(await scrape(op.metricsUrl), "bulwark_distribution_pushes_total")).toBe(0);
      expect((await getJson<ServedConfig>(agent.admin, "/config"))?.version).toBe(before?.version);
    },
  );

  it("SIGKILLed, the policy edited while it is gone → its pod is pending (status 0/1) until it is back and ACKs", async () => {
    await agent.cli.kill("SIGKILL");
    await editPolicy();
    const gone = await until(
      "the edit counted as pending",
      async () => {
        const { generation, status } = await kube.status("web");
        return status?.observedGeneration === generation && status.pods?.pending === 1 ? status : undefined;
      },
      30_000,
    );
    expect(gone.pods).toMatchObject({ selected: 1, acked: 0, pending: 1, summary: "0/1" });
    expect(gone.conditions?.find((c) => c.type === "Propagated")?.status).toBe("False");
    agent = await startAgent();
    await converged("the agent back");
    expect((await kube.status("web")).status?.pods).toMatchObject({ acked: 1, pending: 0, summary: "1/1" });
  }, 120_000);

  it("the connection cut in the middle of a push → the half message is never applied; the agent reconnects and gets the edit", async () => {
    const rounds = LONG ? 30 : 1;
    let worstMs = 0;
    for (let round = 1; round <= rounds; round++) {
      const versionBefore = (await getJson<ServedConfig>(agent.admin, "/config"))?.version;
      const t0 = Date.now();
      service.cutNextMessage();
      await editPolicy();
      await until("the push was cut", () => service.cuts === round, 10_000);
      expect((await getJson<ServedConfig>(agent.admin, "/config"))?.version).toBe(versionBefore);
      await converged(`after cut ${round}`);
      worstMs = Math.max(worstMs, Date.now() - t0);
    }
    figures.cutMidPush = { rounds, worstConvergeMs: worstMs };
    expect(agent.cli.alive()).toBe(true);
    expect(agent.cli.lines().filter((l) => l.event === "config-rejected")).toEqual([]);
    expect(await call()).toMatchObject(EXPECTED);
  }, 300_000);

  it(
    "a stalled agent that never reads → dropped by the operator, whose memory stays bounded; the others still converge",
    { timeout: 120_000 },
    async () => {
      // A policy for the stalled pod with large configs: 8 upstreams, each with a 60 KB fallback body (~0.5 MB).
      const big = (n: number) => ({
        selector: { matchLabels: { app: "stuck" } },
        upstreams: Array.from({ length: 8 }, (_, i) => ({
          name: `big-${i}`,
          host: `big-${i}.shop.svc`,
          port: 8080,
          timeout: `${1000 + n}ms`,
          fallback: { on: ["upstream-error"], static: { status: 200, body: "x".repeat(60_000) } },
        })),
      });
      await kube.policy("stuck", big(0));
      const token = readFileSync(await kube.agentToken("stuck-1"), "utf8");
      const stalled = await connectAndStall(`http://127.0.0.1:${opPort}`, token, "stuck-1");
      await until(
        "the stalled agent is connected",
        async () => metric(await scrape(op.metricsUrl), "bulwark_agents_connected") === 2,
        10_000,
      );
      const rss0 = procStats(op.cli.pid).rss;
      const sent0 = metric(await scrape(op.metricsUrl), "bulwark_distribution_sent_bytes_total");
      const t0 = Date.now();
      let peak = rss0;
      // Edits keep coming (each a new ~0.5 MB config for the stalled pod) until the operator gives up on it.
      for (let n = 1; ; n++) {
        await kube.patchPolicy("stuck", big(n));
        await editPolicy(); // and the healthy agent's policy changes too
        peak = Math.max(peak, procStats(op.cli.pid).rss);
        const m = await scrape(op.metricsUrl);
        if (metric(m, "bulwark_agents_connected") === 1 && n >= 3) break;
        if (Date.now() - t0 > 30_000) throw new Error("the stalled agent was never dropped");
        await sleep(300);
      }
      const droppedAfterMs = Date.now() - t0;
      const m = await scrape(op.metricsUrl);
      const reasons = ["send_buffer", "keepalive"].map((r) =>
        metric(m, "bulwark_distribution_disconnects_total", `reason="${r}"`),
      );
      expect(reasons[0]! + reasons[1]!).toBeGreaterThanOrEqual(1);
      const sentMiB = (metric(m, "bulwark_distribution_sent_bytes_total") - sent0) / MiB;
      // The stuck connection held at most its send buffer (4 MiB) and the kernel's socket buffers; whatever the
      // operator tried to push beyond that was not kept. 64 MiB of headroom covers the heap's own churn.
      expect(peak - rss0).toBeLessThan(64 * MiB);
      figures.stalledAgent = {
        droppedAfterMs,
        reason: reasons[0] ? "send_buffer" : "keepalive",
        pushedMiB: Number(sentMiB.toFixed(1)),
        operatorRssGrowthMiB: Number(((peak - rss0) / MiB).toFixed(1)),
      };
      stalled.destroy();
      await converged("the healthy agent after the stall");
    },
  );
});

/** Upgrades, sends hello, then never reads: the kernel buffers fill and the operator's writes pile up. */
function connectAndStall(url: string, token: string, pod: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${DISTRIBUTION_PATH}`, {
      headers: { connection: "Upgrade", upgrade: DISTRIBUTION_UPGRADE, authorization: `Bearer ${token}` },
      agent: false,
    });
    req.on("response", (res) => reject(new Error(`refused: ${res.statusCode}`)));
    req.on("error", reject);
    req.on("upgrade", (_res, socket: Duplex) => {
      socket.on("error", () => undefined);
      socket.pause();
      socket.write(
        `${JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION, pod: { namespace: NS, name: pod }, agentVersion: "stalled" })}\n`,
      );
      resolve(socket);
    });
    req.end();
  });
}
