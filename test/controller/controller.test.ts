import { describe, expect, it } from "vitest";
import { ManualClock, flushMicrotasks } from "../../operator/controller/clock.js";
import type { ControllerMetrics, Reconciler } from "../../operator/controller/controller.js";
import { Controller } from "../../operator/controller/controller.js";
import type { ReconcileOutcome } from "../../operator/controller/reconcile-result.js";
import {
  TerminalError,
  done,
  error,
  requeueAfter,
  terminal,
} from "../../operator/controller/reconcile-result.js";
import { ItemExponentialFailureRateLimiter } from "../../operator/controller/rate-limiters.js";

function recorder() {
  const results: ReconcileOutcome[] = [];
  const durations: number[] = [];
  let terminals = 0;
  let panics = 0;
  const depth: number[] = [];
  const metrics: ControllerMetrics = {
    reconcileFinished: (r, s) => {
      results.push(r);
      durations.push(s);
    },
    terminalError: () => terminals++,
    reconcilePanic: () => panics++,
    workqueueDepth: (d) => depth.push(d),
  };
  return { metrics, results, durations, depth, terminals: () => terminals, panics: () => panics };
}

function setup(reconcile: Reconciler, workers = 1) {
  const clock = new ManualClock();
  const rec = recorder();
  const c = new Controller({
    name: "test",
    reconcile,
    workers,
    clock,
    metrics: rec.metrics,
    queue: { rateLimiter: new ItemExponentialFailureRateLimiter({ baseDelayMs: 5, maxDelayMs: 1000 }) },
  });
  c.start();
  return { clock, c, rec };
}

/** A reconcile that blocks until released, to hold a key in processing. */
function gate() {
  let release!: () => void;
  const p = new Promise<void>((r) => (release = r));
  return { p, release };
}

describe("Controller", () => {
  it("reconciles a key once per add burst; 100 adds while running cause exactly one more run", async () => {
    const calls: string[] = [];
    const g = gate();
    const { c, rec } = setup(async (key) => {
      calls.push(key);
      if (calls.length === 1) await g.p;
      return done();
    }, 4);
    c.enqueue("ns/a");
    await flushMicrotasks();
    for (let i = 0; i < 100; i++) c.enqueue("ns/a");
    await flushMicrotasks();
    expect(calls).toEqual(["ns/a"]); // four workers, still never concurrently on one key
    g.release();
    await flushMicrotasks(10);
    expect(calls).toEqual(["ns/a", "ns/a"]);
    expect(rec.results).toEqual(["success", "success"]);
  });

  it("runs different keys concurrently up to the worker count, never the same key twice at once", async () => {
    let inFlight = 0;
    let peak = 0;
    const perKey = new Map<string, number>();
    let violations = 0;
    const gates: Array<() => void> = [];
    const { c } = setup(async (key) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      perKey.set(key, (perKey.get(key) ?? 0) + 1);
      if ((perKey.get(key) ?? 0) > 1) violations++;
      await new Promise<void>((r) => gates.push(r));
      perKey.set(key, (perKey.get(key) ?? 0) - 1);
      inFlight--;
      return done();
    }, 3);
    for (const k of ["a", "b", "c", "d", "a", "b"]) c.enqueue(k);
    await flushMicrotasks();
    expect(peak).toBe(3);
    for (let round = 0; round < 10; round++) {
      for (const k of ["a", "b"]) c.enqueue(k);
      for (const r of gates.splice(0)) r();
      await flushMicrotasks();
    }
    while (gates.length > 0) {
      for (const r of gates.splice(0)) r();
      await flushMicrotasks();
    }
    expect(violations).toBe(0);
    expect(peak).toBe(3);
  });

  it("backs off failing keys exponentially up to the cap, then a success resets the backoff", async () => {
    const times: number[] = [];
    let fail = 8;
    const { clock, c, rec } = setup(() => {
      times.push(clock.now());
      return fail-- > 0 ? error(new Error("apiserver 500")) : done();
    });
    const t0 = clock.now();
    c.enqueue("k");
    await clock.advance(5_000);
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(times[0]).toBe(t0);
    expect(gaps).toEqual([5, 10, 20, 40, 80, 160, 320, 640]);
    expect(rec.results.filter((r) => r === "error")).toHaveLength(8);
    expect(rec.results.at(-1)).toBe("success");
    expect(c.queue.numRequeues("k")).toBe(0);

    // a long-failing key waits at most the cap between tries
    times.length = 0;
    fail = 20;
    c.enqueue("k");
    await clock.advance(30_000);
    const gaps2 = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(Math.max(...gaps2)).toBe(1000);
    expect(gaps2.slice(-3)).toEqual([1000, 1000, 1000]);
  });

  it("honours requeueAfter and forgets failures", async () => {
    const times: number[] = [];
    const { clock, c, rec } = setup(() => {
      times.push(clock.now());
      return times.length < 3 ? requeueAfter(30_000) : done();
    });
    const t0 = clock.now();
    c.enqueue("k");
    await clock.advance(29_999);
    expect(times).toEqual([t0]);
    await clock.advance(1);
    expect(times).toEqual([t0, t0 + 30_000]);
    await clock.advance(100_000);
    expect(times).toEqual([t0, t0 + 30_000, t0 + 60_000]);
    expect(rec.results).toEqual(["requeue", "requeue", "success"]);
  });

  it("treats requeueAfter(0) as a rate-limited requeue, never a hot loop", async () => {
    const times: number[] = [];
    const { clock, c } = setup(() => {
      times.push(clock.now());
      return times.length < 5 ? requeueAfter(0) : done();
    });
    const t0 = clock.now();
    c.enqueue("k");
    await clock.advance(1_000);
    expect(times.map((t) => t - t0)).toEqual([0, 5, 15, 35, 75]);
  });

  it("does not retry terminal errors, returned or thrown, but counts them as errors", async () => {
    let calls = 0;
    const { clock, c, rec } = setup((key) => {
      calls++;
      if (key === "returned") return terminal(new Error("spec.upstreams[0].port: out of range"));
      throw new TerminalError("invalid spec", { cause: new Error("bad") });
    });
    c.enqueue("returned");
    c.enqueue("thrown");
    await clock.advance(60_000);
    expect(calls).toBe(2);
    expect(rec.results).toEqual(["error", "error"]);
    expect(rec.terminals()).toBe(2);
    expect(c.queue.waitingCount).toBe(0);
  });

  it("turns a throw or a rejected promise into an error with backoff; the worker survives", async () => {
    let calls = 0;
    const { clock, c, rec } = setup(async () => {
      calls++;
      if (calls === 1) throw new Error("boom");
      if (calls === 2) return Promise.reject(new Error("rejected"));
      return done();
    });
    c.enqueue("k");
    await clock.advance(100);
    expect(calls).toBe(3);
    expect(rec.results).toEqual(["error", "error", "success"]);
    expect(rec.panics()).toBe(2);
  });

  it("records durations from the injected clock", async () => {
    const { clock, c, rec } = setup(async () => {
      await new Promise<void>((r) => clock.setTimeout(r, 250));
      return done();
    });
    c.enqueue("k");
    await clock.advance(1000);
    expect(rec.durations).toEqual([0.25]);
  });

  it("stop finishes in-flight reconciles, aborts their signal, and takes no new work", async () => {
    const g = gate();
    let sawAbort = false;
    let calls = 0;
    const { c } = setup(async (_key, ctx) => {
      calls++;
      await g.p;
      sawAbort = ctx.signal.aborted;
      return done();
    });
    c.enqueue("a");
    await flushMicrotasks();
    let stopped = false;
    const s = c.stop().then(() => (stopped = true));
    await flushMicrotasks();
    expect(stopped).toBe(false);
    expect(c.enqueue("b")).toBe(false);
    g.release();
    await s;
    expect(sawAbort).toBe(true);
    expect(calls).toBe(1);
  });
});
