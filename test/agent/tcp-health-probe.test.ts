// The connect probe's decisions, on a manual clock and a manual scheduler (no sockets, no sleeping): when it
// probes, how a failure holds the breaker open, when a success half-opens it, and what it leaves alone.
import { describe, expect, it } from "vitest";
import { TcpHealthProbe, type ProbeVerdict } from "../../operator/agent/tcp-health-probe.js";
import type { Timer } from "../../operator/agent/timers.js";
import { CircuitBreaker } from "../../operator/resilience/circuit-breaker.js";
import { ManualClock } from "../../operator/resilience/clock.js";

const INTERVAL = 1000;
const TIMEOUT = 500;

/** Holds the scheduled callbacks; `fire()` runs the next one, moving the clock to its time. */
class ManualScheduler {
  private queue: { at: number; fn: () => void; live: boolean }[] = [];
  constructor(private readonly clock: ManualClock) {}
  after(ms: number, fn: () => void): Timer {
    const e = { at: this.clock.now() + ms, fn, live: true };
    this.queue.push(e);
    return { cancel: () => (e.live = false) };
  }
  get pending(): number {
    return this.queue.filter((e) => e.live).length;
  }
  /** Runs the earliest live callback after moving the clock to its time. */
  fire(): void {
    this.queue = this.queue.filter((e) => e.live).sort((a, b) => a.at - b.at);
    const e = this.queue.shift();
    if (!e) throw new Error("nothing scheduled");
    if (e.at > this.clock.now()) this.clock.set(e.at);
    e.fn();
  }
}

function setup(opts: { healthyThreshold?: number; openBaseMs?: number } = {}) {
  const clock = new ManualClock(10_000);
  const scheduler = new ManualScheduler(clock);
  const breaker = new CircuitBreaker(
    {
      consecutiveFailures: 1,
      openBaseMs: opts.openBaseMs ?? 5000,
      openMaxMs: 60_000,
      halfOpenPermittedCalls: 1,
    },
    clock.now(),
  );
  let up = false;
  let pending: Promise<{ ok: true }> | undefined;
  const attempts: number[] = [];
  const verdicts: ProbeVerdict[] = [];
  const probe = new TcpHealthProbe({
    breaker,
    settings: { intervalMs: INTERVAL, timeoutMs: TIMEOUT, healthyThreshold: opts.healthyThreshold ?? 1 },
    scheduler,
    clock,
    connect: (timeoutMs) => {
      attempts.push(timeoutMs);
      if (pending) return pending;
      return Promise.resolve(up ? { ok: true } : { ok: false, error: "ECONNREFUSED" });
    },
    onProbe: (v) => verdicts.push(v),
  });
  /** Fires the next tick and lets the probe's connect settle. */
  const tick = async () => {
    scheduler.fire();
    await new Promise((r) => setImmediate(r));
  };
  const trip = () => {
    const a = breaker.tryAcquire(clock.now());
    if (!a.ok) throw new Error("breaker not closed");
    breaker.onResult(a.permit, "failure", 1, clock.now());
  };
  return {
    clock,
    scheduler,
    breaker,
    probe,
    attempts,
    verdicts,
    tick,
    trip,
    setUp: (v: boolean) => (up = v),
    /** The next probes hang on `p`. */
    hangOn: (p: Promise<{ ok: true }>) => (pending = p),
  };
}

describe("tcp health probe", () => {
  it("never probes while the breaker is closed", async () => {
    const t = setup();
    for (let i = 0; i < 5; i++) await t.tick();
    expect(t.attempts).toEqual([]);
    expect(t.probe.status()).toMatchObject({ active: false, lastResult: undefined });
    expect(t.scheduler.pending).toBe(1);
  });

  it("a failed probe keeps the breaker open past its open duration, until a probe connects; then half-open at once", async () => {
    const t = setup();
    t.trip();
    expect(t.breaker.state.kind).toBe("open");
    // Probes at +1 s … +7 s all fail; the open duration (5 s) would have ended at +5 s.
    for (let i = 0; i < 7; i++) await t.tick();
    expect(t.attempts).toEqual(Array(7).fill(TIMEOUT));
    const st = t.breaker.state;
    expect(st.kind).toBe("open");
    // Held open to cover the next probe's verdict (one interval plus its timeout), no longer.
    expect(st.kind === "open" && st.until).toBe(t.clock.now() + INTERVAL + TIMEOUT);
    expect(t.breaker.tryAcquire(t.clock.now() + INTERVAL).ok).toBe(false);
    expect(t.probe.status()).toMatchObject({
      active: true,
      lastResult: "failure",
      lastError: "ECONNREFUSED",
      consecutiveFailures: 7,
      sawUpstreamDown: true,
      holdingOpen: true,
    });
    expect(t.verdicts.filter((v) => v.firstFailure)).toHaveLength(1);
    // Holding open is not a new trip: the next open duration does not double because of it.
    expect(st.kind === "open" && st.trips).toBe(1);

    t.setUp(true);
    await t.tick();
    expect(t.breaker.state.kind).toBe("half-open");
    expect(t.verdicts.at(-1)).toMatchObject({ ok: true, action: "half-open" });
    expect(t.probe.status()).toMatchObject({ active: false, lastResult: "success", holdingOpen: false });
    // The next trial decides, as for any half-open breaker.
    const a = t.breaker.tryAcquire(t.clock.now());
    expect(a.ok).toBe(true);
  });

  it("half-opens early: within one interval of the upstream's return, not after the rest of the open duration", async () => {
    const t = setup({ openBaseMs: 30_000 });
    t.trip();
    const openedAt = t.clock.now();
    await t.tick(); // +1 s: down
    t.setUp(true);
    await t.tick(); // +2 s: back
    expect(t.breaker.state.kind).toBe("half-open");
    expect(t.clock.now() - openedAt).toBe(2 * INTERVAL);
  });

  it("with healthyThreshold 3, needs three successes in a row after the failure", async () => {
    const t = setup({ healthyThreshold: 3 });
    t.trip();
    await t.tick();
    t.setUp(true);
    await t.tick();
    await t.tick();
    expect(t.breaker.state.kind).toBe("open");
    expect(t.probe.status()).toMatchObject({ consecutiveSuccesses: 2, sawUpstreamDown: true });
    await t.tick();
    expect(t.breaker.state.kind).toBe("half-open");
  });

  it("a probe that connects without having seen the upstream down changes nothing: the open duration decides", async () => {
    const t = setup();
    t.setUp(true);
    t.trip();
    for (let i = 0; i < 4; i++) await t.tick();
    expect(t.attempts).toHaveLength(4);
    expect(t.breaker.state.kind).toBe("open");
    expect(t.verdicts.every((v) => v.action === "none")).toBe(true);
    // At +5 s the breaker half-opens by itself on the next connection, as without a probe.
    t.clock.advance(1000);
    expect(t.breaker.tryAcquire(t.clock.now()).ok).toBe(true);
    expect(t.breaker.state.kind).toBe("half-open");
  });

  it("starts afresh in every open period: a failure seen before a failed trial does not half-open the next one", async () => {
    const t = setup();
    t.trip();
    await t.tick(); // down
    t.setUp(true);
    await t.tick(); // back: half-open
    expect(t.breaker.state.kind).toBe("half-open");
    // The trial fails (the upstream accepts connects but resets them): open again, 10 s this time.
    const a = t.breaker.tryAcquire(t.clock.now());
    if (!a.ok) throw new Error("no trial");
    t.breaker.onResult(a.permit, "failure", 1, t.clock.now());
    expect(t.breaker.state).toMatchObject({ kind: "open", trips: 2 });
    for (let i = 0; i < 5; i++) await t.tick();
    // Probes connect, but this open period has not seen the upstream down: no early half-open.
    expect(t.breaker.state.kind).toBe("open");
    expect(t.probe.status()).toMatchObject({ consecutiveSuccesses: 5, sawUpstreamDown: false });
  });

  it("ignores a verdict that arrives after the breaker moved on, and stops cleanly", async () => {
    const t = setup();
    t.trip();
    await t.tick(); // down: held open
    let release!: (r: { ok: true }) => void;
    const slow = new Promise<{ ok: true }>((r) => (release = r));
    t.hangOn(slow);
    t.scheduler.fire();
    // Meanwhile someone (the operator, a reset) closes the breaker.
    t.breaker.forceState("closed", t.clock.now());
    release({ ok: true });
    await new Promise((r) => setImmediate(r));
    expect(t.breaker.state.kind).toBe("closed");
    expect(t.verdicts.at(-1)).toMatchObject({ ok: true, action: "none" });
    t.probe.stop();
    expect(t.scheduler.pending).toBe(0);
  });
});
