import { describe, expect, it } from "vitest";
import { Bulkhead } from "../../operator/resilience/bulkhead.js";
import type { BulkheadDecision, Ticket } from "../../operator/resilience/bulkhead.js";

function ticketOf(d: BulkheadDecision): Ticket {
  if (d.kind !== "queued") throw new Error(`expected queued, got ${d.kind}`);
  return d.ticket;
}

describe("bulkhead", () => {
  it("grants up to maxConcurrent, queues up to maxQueue, then rejects with queue-full", () => {
    const b = new Bulkhead({ maxConcurrent: 2, maxQueue: 2, queueTimeoutMs: 100 });
    expect(b.tryAcquire(0).kind).toBe("granted");
    expect(b.tryAcquire(0).kind).toBe("granted");
    expect(b.tryAcquire(0).kind).toBe("queued");
    expect(b.tryAcquire(0).kind).toBe("queued");
    expect(b.tryAcquire(0)).toEqual({ kind: "rejected", reason: "queue-full" });
    expect([b.inflight, b.queued]).toEqual([2, 2]);
  });

  it("hands released slots to waiting tickets in FIFO order", async () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 3, queueTimeoutMs: 1_000 });
    b.tryAcquire(0);
    const t1 = ticketOf(b.tryAcquire(1));
    const t2 = ticketOf(b.tryAcquire(2));
    const order: number[] = [];
    void t1.settled.then(() => order.push(1));
    void t2.settled.then(() => order.push(2));
    b.release(10);
    expect(t1.status).toBe("granted");
    expect(t2.status).toBe("waiting");
    expect(b.inflight).toBe(1);
    b.release(11);
    expect(await t2.settled).toBe("granted");
    expect(order).toEqual([1, 2]);
  });

  it("a newcomer does not overtake a waiting ticket", () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 100 });
    b.tryAcquire(0);
    ticketOf(b.tryAcquire(0));
    expect(b.tryAcquire(0).kind).toBe("queued");
  });

  it("expires tickets past the queue timeout and reports them", async () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 100 });
    b.tryAcquire(0);
    const t1 = ticketOf(b.tryAcquire(0));
    const t2 = ticketOf(b.tryAcquire(50));
    expect(b.nextDeadline()).toBe(100);
    expect(b.expire(99)).toEqual([]);
    expect(b.expire(100)).toEqual([t1]);
    expect(await t1.settled).toBe("expired");
    expect(b.nextDeadline()).toBe(150);
    // a release after t2's deadline does not grant it: it expires instead and the slot stays free
    b.release(200);
    expect(t2.status).toBe("expired");
    expect([b.inflight, b.queued]).toEqual([0, 0]);
  });

  it("a full queue of expired tickets does not reject a newcomer", () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 10 });
    b.tryAcquire(0);
    ticketOf(b.tryAcquire(0));
    expect(b.tryAcquire(20).kind).toBe("queued");
  });

  it("a cancelled ticket (client abort) frees its queue place and is skipped", async () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 100 });
    b.tryAcquire(0);
    const t = ticketOf(b.tryAcquire(0));
    expect(b.cancel(t)).toBe(true);
    expect(await t.settled).toBe("cancelled");
    expect(b.cancel(t)).toBe(false);
    const t2 = ticketOf(b.tryAcquire(0));
    b.release(1);
    expect(t2.status).toBe("granted");
  });

  it("maxQueue 0 rejects as soon as all slots are busy", () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 0 });
    b.tryAcquire(0);
    expect(b.tryAcquire(0)).toEqual({ kind: "rejected", reason: "queue-full" });
  });

  it("setLimit raises the limit live, admitting waiting tickets at once", () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 100 });
    b.tryAcquire(0);
    const ts = [0, 1, 2].map(() => ticketOf(b.tryAcquire(0)));
    b.setLimit(3, 1);
    expect(ts.map((t) => t.status)).toEqual(["granted", "granted", "waiting"]);
    expect(b.inflight).toBe(3);
  });

  it("setLimit lowers the limit without dropping in-flight calls", () => {
    const b = new Bulkhead({ maxConcurrent: 4, maxQueue: 5, queueTimeoutMs: 1_000 });
    for (let i = 0; i < 4; i++) b.tryAcquire(0);
    b.setLimit(2, 0);
    expect(b.inflight).toBe(4);
    const t = ticketOf(b.tryAcquire(0));
    b.release(1);
    b.release(2);
    expect(t.status).toBe("waiting"); // in-flight 2, limit 2
    b.release(3);
    expect(t.status).toBe("granted");
    expect(b.inflight).toBe(2);
  });

  it("keeps FIFO order through thousands of queued tickets (queue compaction)", () => {
    const b = new Bulkhead({ maxConcurrent: 1, maxQueue: 5_000, queueTimeoutMs: 1e9 });
    b.tryAcquire(0);
    const ts = Array.from({ length: 3_000 }, () => ticketOf(b.tryAcquire(0)));
    const granted: number[] = [];
    for (let i = 0; i < 3_000; i++) {
      b.release(i);
      const next = ts.findIndex((t) => t.status === "granted" && !granted.includes(t.id));
      granted.push(ts[next]!.id);
    }
    expect(granted).toEqual(ts.map((t) => t.id));
    expect([b.inflight, b.queued]).toEqual([1, 0]);
  });

  it("rejects invalid sizes", () => {
    expect(() => new Bulkhead({ maxConcurrent: -1 })).toThrow(/maxConcurrent/);
    expect(() => new Bulkhead({ maxQueue: 1.5 })).toThrow(/maxQueue/);
  });
});
