import { describe, expect, it } from "vitest";
import { ManualClock, flushMicrotasks } from "../../operator/controller/clock.js";
import { ItemExponentialFailureRateLimiter } from "../../operator/controller/rate-limiters.js";
import { WorkQueue } from "../../operator/controller/work-queue.js";

function queue(extra: Partial<ConstructorParameters<typeof WorkQueue>[0]> = {}) {
  const clock = new ManualClock();
  const depths: number[] = [];
  const dropped: string[] = [];
  const q = new WorkQueue({
    clock,
    rateLimiter: new ItemExponentialFailureRateLimiter({ baseDelayMs: 5, maxDelayMs: 1000 }),
    metrics: { depth: (d) => depths.push(d), dropped: (k) => dropped.push(k) },
    ...extra,
  });
  return { clock, q, depths, dropped };
}

describe("WorkQueue", () => {
  it("deduplicates a key added many times before it is taken", async () => {
    const { q } = queue();
    for (let i = 0; i < 100; i++) q.add("a");
    q.add("b");
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBe("b");
    expect(q.depth).toBe(0);
  });

  it("a key added 100 times while processing is handed out once more after done, not 100 times", async () => {
    const { q } = queue();
    q.add("a");
    const key = await q.get();
    for (let i = 0; i < 100; i++) q.add("a");
    expect(q.depth).toBe(0); // not handed to another worker meanwhile
    q.done(key as string);
    expect(q.depth).toBe(1);
    expect(await q.get()).toBe("a");
    q.done("a");
    expect(q.depth).toBe(0);
  });

  it("never hands one key to two waiting workers", async () => {
    const { q } = queue();
    const w1 = q.get();
    const w2 = q.get();
    q.add("a");
    expect(await w1).toBe("a");
    q.add("a");
    let w2Got: string | undefined = "pending";
    void w2.then((k) => (w2Got = k));
    await flushMicrotasks();
    expect(w2Got).toBe("pending");
    q.done("a");
    expect(await w2).toBe("a");
  });

  it("delays addAfter until the time comes, keeping the earliest time per key", async () => {
    const { clock, q } = queue();
    q.addAfter("a", 1000);
    q.addAfter("a", 300);
    q.addAfter("a", 5000);
    expect(q.waitingCount).toBe(1);
    await clock.advance(299);
    expect(q.depth).toBe(0);
    await clock.advance(1);
    expect(q.depth).toBe(1);
    await clock.advance(10_000);
    expect(q.depth).toBe(1); // the later timers were replaced, not added
    expect(clock.pending()).toBe(0);
  });

  it("rate-limited adds back off per key and forget resets", async () => {
    const { clock, q } = queue();
    const readyAfter = async (): Promise<number> => {
      q.addRateLimited("a");
      let t = 0;
      while (q.depth === 0) {
        await clock.advance(1);
        t++;
      }
      const k = await q.get();
      q.done(k as string);
      return t;
    };
    expect(await readyAfter()).toBe(5);
    expect(await readyAfter()).toBe(10);
    expect(await readyAfter()).toBe(20);
    expect(q.numRequeues("a")).toBe(3);
    q.forget("a");
    expect(await readyAfter()).toBe(5);
  });

  it("is bounded: adds past maxKeys are dropped and counted, existing keys still dedup", () => {
    const { q, dropped } = queue({ maxKeys: 3 });
    expect(q.add("a")).toBe(true);
    expect(q.add("b")).toBe(true);
    expect(q.addAfter("c", 100)).toBe(true);
    expect(q.add("d")).toBe(false);
    expect(q.addAfter("e", 10)).toBe(false);
    expect(q.add("a")).toBe(true); // already held: not a drop
    expect(q.add("c")).toBe(true); // waiting key: not a drop
    expect(q.drops).toBe(2);
    expect(dropped).toEqual(["d", "e"]);
  });

  it("reports its depth on every change", async () => {
    const { q, depths } = queue();
    q.add("a");
    q.add("b");
    await q.get();
    expect(depths).toEqual([1, 2, 1]);
  });

  it("after shutDown, ignores adds and delayed adds, hands out what was queued, then undefined", async () => {
    const { clock, q } = queue();
    q.add("a");
    q.addAfter("late", 100);
    q.shutDown();
    expect(q.add("b")).toBe(false);
    expect(await q.get()).toBe("a");
    expect(await q.get()).toBeUndefined();
    await clock.advance(1000);
    expect(q.depth).toBe(0);
  });

  it("wakes blocked workers with undefined on shutdown", async () => {
    const { q } = queue();
    const w = q.get();
    q.shutDown();
    expect(await w).toBeUndefined();
  });

  it("shutDownWithDrain waits for in-flight keys to be done", async () => {
    const { q } = queue();
    q.add("a");
    const k = await q.get();
    let drained = false;
    const p = q.shutDownWithDrain().then(() => (drained = true));
    await flushMicrotasks();
    expect(drained).toBe(false);
    q.done(k as string);
    await p;
    expect(drained).toBe(true);
  });
});
