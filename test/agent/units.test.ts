import type { IncomingMessage } from "node:http";
import { describe, expect, it } from "vitest";
import { parseDeadline, remainingHeader, shrink } from "../../operator/agent/deadline.js";
import { filterHeaders, parseTarget } from "../../operator/agent/http-util.js";
import { traceIdOf } from "../../operator/agent/recovery-log.js";
import { ResponseCache } from "../../operator/agent/response-cache.js";
import { hostAliases } from "../../operator/agent/runtime.js";
import { DeadlineQueue } from "../../operator/agent/timers.js";

const req = (url: string, host?: string) =>
  ({ url, headers: host ? { host } : {} }) as unknown as IncomingMessage;

describe("request targets", () => {
  it("parses absolute and origin form, ports, IPv6 and rejects garbage", () => {
    expect(parseTarget(req("http://Payments.Shop:8080/a?b=1#frag"))).toMatchObject({
      host: "payments.shop",
      port: 8080,
      path: "/a?b=1",
    });
    expect(parseTarget(req("http://payments"))).toMatchObject({ host: "payments", port: 80, path: "/" });
    expect(parseTarget(req("http://[::1]:9000/x"))).toMatchObject({ host: "::1", port: 9000, path: "/x" });
    expect(parseTarget(req("/x", "api.shop.svc:81"))).toMatchObject({
      host: "api.shop.svc",
      port: 81,
      path: "/x",
    });
    expect(parseTarget(req("/x"))).toMatchObject({ error: 400 });
    expect(parseTarget(req("/x", "a:99999"))).toMatchObject({ error: 400 });
    expect(parseTarget(req("http://a b/"))).toMatchObject({ error: 400 });
    expect(parseTarget(req("*"))).toMatchObject({ error: 400 });
  });

  it("drops hop-by-hop headers and those named by Connection", () => {
    const out = filterHeaders([
      "Host",
      "a",
      "Connection",
      "keep-alive, X-Secret",
      "X-Secret",
      "1",
      "Keep-Alive",
      "5",
      "X-Ok",
      "2",
      "Proxy-Connection",
      "x",
    ]);
    expect(out).toEqual(["Host", "a", "X-Ok", "2"]);
  });

  it("matches Kubernetes short names in the pod's namespace", () => {
    expect(hostAliases("payments.shop.svc.cluster.local", "shop")).toEqual([
      "payments.shop.svc.cluster.local",
      "payments.shop.svc",
      "payments.shop",
      "payments",
    ]);
    expect(hostAliases("payments.shop.svc.cluster.local", "other")).not.toContain("payments");
  });
});

describe("deadlines", () => {
  it("parses the header strictly and shrinks timeouts to it", () => {
    expect(parseDeadline("250")).toEqual({ kind: "ok", remainingMs: 250 });
    expect(parseDeadline(undefined)).toEqual({ kind: "none" });
    expect(parseDeadline("-1").kind).toBe("invalid");
    expect(parseDeadline("1e9").kind).toBe("invalid");
    expect(parseDeadline("999999999").kind).toBe("invalid");
    expect(shrink(1000, 100 + 50, 100)).toBe(50);
    expect(shrink(20, 100 + 50, 100)).toBe(20);
    expect(shrink(undefined, 180, 100)).toBe(80);
    expect(remainingHeader(100, 150)).toBe("0");
  });
});

describe("trace ids", () => {
  it("takes the trace id from a W3C traceparent", () => {
    expect(traceIdOf("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe(
      "4bf92f3577b34da6a3ce929d0e0e4736",
    );
    expect(traceIdOf("00-00000000000000000000000000000000-00f067aa0ba902b7-01")).toBeUndefined();
    expect(traceIdOf("garbage")).toBeUndefined();
  });
});

describe("deadline queue", () => {
  it("runs timers in deadline order under one Node timer, skips cancelled ones", async () => {
    const q = new DeadlineQueue();
    const fired: number[] = [];
    const t3 = q.after(30, () => fired.push(30));
    q.after(10, () => fired.push(10));
    q.after(20, () => fired.push(20));
    const c = q.after(15, () => fired.push(15));
    c.cancel();
    c.cancel();
    expect(q.size).toBe(3);
    await new Promise((r) => setTimeout(r, 60));
    expect(fired).toEqual([10, 20, 30]);
    t3.cancel(); // after it ran: harmless
    expect(q.size).toBe(0);
    const s = q.sleep(10_000);
    s.cancel();
    await s.promise;
    // Many cancelled timers are compacted away.
    for (let i = 0; i < 1000; i++) q.after(10_000, () => undefined).cancel();
    expect(q.size).toBe(0);
    q.close();
  });
});

describe("response cache", () => {
  it("is bounded by entries, TTL and body size", () => {
    const c = new ResponseCache(100, 2, 10);
    const e = (n: number) => ({ status: 200, headers: [], body: Buffer.from("x"), storedAt: n });
    c.store("a", e(0));
    c.store("b", e(0));
    c.store("c", e(0));
    expect(c.size).toBe(2);
    expect(c.lookup("a", 0)).toBeUndefined();
    expect(c.lookup("b", 100)).toBeDefined();
    expect(c.lookup("b", 101)).toBeUndefined();
    c.store("big", { ...e(0), body: Buffer.alloc(11) });
    expect(c.lookup("big", 0)).toBeUndefined();
  });
});
