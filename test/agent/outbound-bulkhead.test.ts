import http from "node:http";
import { afterEach, describe, expect, it } from "vitest";
import {
  makeConfig,
  send,
  startAgent,
  startUpstream,
  until,
  upstreamRule,
  type TestAgent,
  type Upstream,
} from "./harness.js";

let agent: TestAgent | undefined;
let ups: Upstream[] = [];
afterEach(async () => {
  await agent?.close();
  agent = undefined;
  await Promise.all(ups.map((u) => u.close()));
  ups = [];
});

/** An upstream that holds every request until told, then answers, fails or resets it. */
async function heldUpstream() {
  const held: http.ServerResponse[] = [];
  const up = await startUpstream((_req, res) => held.push(res));
  ups.push(up);
  return { up, held };
}

describe("outbound proxy: bulkhead", () => {
  it("rejects past maxConcurrent + maxQueue, and releases on completion, error and client abort", async () => {
    const { up, held } = await heldUpstream();
    agent = await startAgent(
      makeConfig([
        upstreamRule("payments", up.port, {
          bulkhead: { maxConcurrent: 2, maxQueue: 1, queueTimeoutMs: 5000 },
        }),
      ]),
    );
    const port = agent.agent.ports.outbound;
    const host = `127.0.0.1:${up.port}`;
    const bh = () => agent!.agent.runtime!.upstreams[0]!.bulkhead!;
    const r1 = send(port, { host, path: "/1" });
    const r2 = send(port, { host, path: "/2" });
    await until(() => held.length === 2, 3000, "two in flight");
    const r3 = send(port, { host, path: "/3" });
    await until(() => bh().queued === 1, 3000, "one queued");
    // Full: the fourth is rejected at once and never reaches the upstream.
    const r4 = await send(port, { host, path: "/4" });
    expect(r4.status).toBe(503);
    expect(r4.headers["x-bulwark-shed"]).toBe("bulkhead-full");
    expect(up.hits).toBe(2);

    // Completion releases a slot: the queued request proceeds.
    held[0]!.end("one");
    expect((await r1).body).toBe("one");
    await until(() => held.length === 3, 3000, "queued request admitted");
    // An upstream error (reset) releases a slot.
    held[1]!.socket!.destroy();
    expect((await r2).status).toBe(502);
    await until(() => bh().inflight === 1, 3000, "release after error");
    // A client abort releases the slot too, and cancels the upstream request.
    held[2]!.end("three");
    expect((await r3).body).toBe("three");
    expect(bh().inflight).toBe(0);
    const abortReq = http.request({ host: "127.0.0.1", port, path: "/5", headers: { host }, agent: false });
    abortReq.on("error", () => undefined);
    abortReq.end();
    await until(() => held.length === 4 && bh().inflight === 1, 3000, "fifth in flight");
    const abortedBefore = up.aborted;
    abortReq.destroy();
    await until(() => bh().inflight === 0, 3000, "release after client abort");
    await until(() => up.aborted === abortedBefore + 1, 3000, "upstream request cancelled");
    const metrics = (await send(agent.agent.ports.admin, { path: "/metrics" })).body;
    expect(metrics).toContain('bulwark_bulkhead_rejected_total{policy="shop/test",upstream="payments"} 1');
    expect(metrics).toContain('bulwark_bulkhead_inflight{policy="shop/test",upstream="payments"} 0');
  });

  it("a queued request gives up after queueTimeout", async () => {
    const { up, held } = await heldUpstream();
    agent = await startAgent(
      makeConfig([
        upstreamRule("payments", up.port, {
          bulkhead: { maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 50 },
        }),
      ]),
    );
    const port = agent.agent.ports.outbound;
    const host = `127.0.0.1:${up.port}`;
    const r1 = send(port, { host });
    await until(() => held.length === 1);
    const t = Date.now();
    const r2 = await send(port, { host });
    expect(r2.status).toBe(503);
    expect(r2.headers["x-bulwark-shed"]).toBe("bulkhead-full");
    expect(Date.now() - t).toBeGreaterThanOrEqual(45);
    held[0]!.end("x");
    await r1;
    expect(up.hits).toBe(1);
  });
});
