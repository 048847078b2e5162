// End to end: `bulwark up --json` as a child process, with the fault script compressed (--fault-scale 0.5:
// one cycle in about 31 s, after a warm-up of a few seconds), asserting from its snapshots that the demo
// shows what it promises, and that every process it started is gone after it exits. One run for the whole
// file (2 shared cores).
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Snapshot } from "../../operator/demo/snapshot.js";
import type { TierCounts } from "../../operator/demo/traffic.js";

const ROOT = resolve(import.meta.dirname, "../..");
const TSX = join(ROOT, "node_modules/.bin/tsx");

let stateDir: string;
let snapshots: Snapshot[] = [];
let exitCode: number | null = null;
let stderr = "";
let upPid = -1;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A base with 100 free ports above it (the demo's services and pods live at base..base+99). */
async function freeBase(): Promise<number> {
  const probe = (port: number) =>
    new Promise<boolean>((r) => {
      const s = net.createServer();
      s.once("error", () => r(false));
      s.listen(port, "127.0.0.1", () => s.close(() => r(true)));
    });
  for (let attempt = 0; attempt < 20; attempt++) {
    // Below the kernel's ephemeral range (32768+): an outgoing connection elsewhere on the machine could
    // otherwise take one of the demo's ports between this check and the agent's bind.
    const base = 20_000 + Math.floor(Math.random() * 120) * 100;
    const ok = await Promise.all(
      [0, 1, 2, ...Array.from({ length: 80 }, (_, i) => 10 + i)].map((d) => probe(base + d)),
    );
    if (ok.every(Boolean)) return base;
  }
  throw new Error("no free port range");
}

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), "bulwark-up-"));
  const base = await freeBase();
  const child = spawn(
    TSX,
    [
      "operator/cli/main.ts",
      "up",
      "--json",
      "--duration",
      "50s",
      "--fault-scale",
      "0.5",
      "--state-dir",
      stateDir,
      "--port-base",
      String(base),
      "--cluster-port",
      "0",
      "--metrics-port",
      "0",
      "--health-port",
      "0",
      "--distribution-port",
      "0",
      "--prometheus-port",
      "0",
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
  );
  upPid = child.pid ?? -1;
  let out = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  exitCode = await new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  snapshots = out
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Snapshot);
}, 150_000);

afterAll(() => {
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

const sum = (c: TierCounts) => c.ok + c.fallback + c.shed + c.error;

describe("bulwark up --json --duration 50s --fault-scale 0.5", () => {
  it("exits 0 after the duration, having printed a snapshot a second", () => {
    expect(exitCode, stderr).toBe(0);
    expect(snapshots.length).toBeGreaterThanOrEqual(40);
  });

  it("every demo policy becomes Ready (Accepted, Propagated to all its pods)", () => {
    const ready = snapshots.find(
      (s) => s.policies.length >= 5 && s.policies.every((p) => p.ready === "True"),
    );
    expect(ready, JSON.stringify(snapshots[0]?.policies)).toBeDefined();
    expect(ready?.policies.map((p) => p.name).sort()).toEqual([
      "checkout-shedding",
      "checkout-to-inventory",
      "checkout-to-payments",
      "inventory-capacity",
      "payments-capacity",
    ]);
    expect(ready?.policies.every((p) => p.propagated === "True" && p.accepted === "True")).toBe(true);
  });

  it("payments failing opens checkout's breakers and the fallback serves; recovery closes them again", () => {
    const state = (s: Snapshot) => s.pods.filter((p) => p.app === "checkout").map((p) => p.breakers.payments);
    const openedAt = snapshots.findIndex(
      (s) => s.step?.id === "payments-failing" && state(s).includes("open"),
    );
    expect(openedAt).toBeGreaterThan(0);
    // Fallbacks while open: the driver saw degraded answers, the agents counted fallbacks.
    const whileOpen = snapshots.slice(openedAt).filter((s) => s.step?.id === "payments-failing");
    const fallbacks = whileOpen.reduce(
      (n, s) => n + Object.values(s.traffic.window).reduce((m, c) => m + c.fallback, 0),
      0,
    );
    expect(fallbacks).toBeGreaterThan(10);
    const last = snapshots.at(-1) as Snapshot;
    expect(
      last.pods.filter((p) => p.app === "checkout").reduce((n, p) => n + p.fallbacksTotal, 0),
    ).toBeGreaterThan(10);
    // Closed again once payments recovered, in every checkout pod.
    const closedAgain = snapshots
      .slice(openedAt)
      .find((s) => s.step?.id !== "payments-failing" && state(s).every((b) => b === "closed"));
    expect(closedAgain, "breakers closed after recovery").toBeDefined();
  });

  it("inventory slowing sheds the lowest tier while the top tier keeps >= 99% success", () => {
    const slow = snapshots.filter(
      (s) => s.step?.id === "inventory-slow" || s.step?.id === "inventory-recovered",
    );
    const shed = slow.reduce((n, s) => n + s.traffic.window.sheddable.shed, 0);
    const sheddable = slow.reduce((n, s) => n + sum(s.traffic.window.sheddable), 0);
    expect(shed / Math.max(1, sheddable)).toBeGreaterThan(0.2);
    expect(slow.some((s) => s.pods.some((p) => p.app === "checkout" && (p.inbound.limit ?? 24) < 20))).toBe(
      true,
    );
    const critical = (snapshots.at(-1) as Snapshot).traffic.totals.critical;
    const served = critical.ok + critical.fallback;
    expect(served / sum(critical), JSON.stringify(critical)).toBeGreaterThanOrEqual(0.99);
  });

  it("payments-1 turning unhealthy moves its quota to payments-0, never exceeding the cluster budget", () => {
    const step = snapshots.filter((s) => s.step?.id === "pod-unhealthy");
    expect(step.length).toBeGreaterThan(0);
    expect(step.some((s) => s.pods.find((p) => p.name === "payments-1")?.appHealth === "unhealthy")).toBe(
      true,
    );
    // The operator's view (status.quotas): all of the budget (40 concurrent, 200 req/s) to payments-0.
    const quota = (s: Snapshot, pod: string) =>
      s.policies.find((p) => p.name === "payments-capacity")?.quotas.find((q) => q.pod === pod);
    const moved = step.find((s) => quota(s, "payments-0")?.concurrency === 40);
    expect(moved, JSON.stringify(step.map((s) => s.policies))).toBeDefined();
    expect(quota(moved as Snapshot, "payments-1")).toMatchObject({ concurrency: 0, requestsPerSecond: 0 });
    // What the agents enforce (their /status): payments-0 took the whole budget …
    const enforced = (s: Snapshot, pod: string) => s.pods.find((p) => p.name === pod)?.inbound;
    expect(step.some((s) => enforced(s, "payments-0")?.maxConcurrent === 40)).toBe(true);
    expect(step.some((s) => enforced(s, "payments-0")?.requestsPerSecond === 200)).toBe(true);
    // … and the pods together never enforced more than it, at any sample of the whole run.
    for (const s of snapshots) {
      const payments = s.pods.filter((p) => p.app === "payments" && p.up);
      const concurrent = payments.reduce((n, p) => n + (p.inbound.maxConcurrent ?? 0), 0);
      const rate = payments.reduce((n, p) => n + (p.inbound.requestsPerSecond ?? 0), 0);
      expect(concurrent, `t=${s.elapsedMs}`).toBeLessThanOrEqual(40);
      expect(rate, `t=${s.elapsedMs}`).toBeLessThanOrEqual(200);
    }
    // Recovered: an even split again.
    const after = snapshots.filter((s) => s.step?.id === "pod-recovered" || (s.step?.cycle ?? 1) > 1);
    expect(after.some((s) => quota(s, "payments-1")?.concurrency === 20)).toBe(true);
  });

  it("every process it started is gone after exit", () => {
    const pids = new Set(snapshots.flatMap((s) => s.processes.map((p) => p.pid)));
    expect(pids.size).toBe(7);
    for (const pid of [...pids, upPid]) expect(alive(pid), `pid ${pid}`).toBe(false);
    const file = JSON.parse(readFileSync(join(stateDir, "demo/pids.json"), "utf8")) as {
      children: unknown[];
    };
    expect(file.children).toEqual([]);
  });
});
