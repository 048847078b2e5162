import type http from "node:http";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { stringify as stringifyYaml } from "yaml";
import { FileConfigSource } from "../../operator/agent/file-config-source.js";
import { StateStore } from "../../operator/agent/state-store.js";
import type { CircuitBreakerConfig } from "../../operator/api/sidecar-config.js";
import { ManualClock } from "../../operator/resilience/clock.js";
import {
  MemorySource,
  makeConfig,
  send,
  startAgent,
  startUpstream,
  until,
  upstreamRule,
  type TestAgent,
  type Upstream,
} from "./harness.js";

const breaker: CircuitBreakerConfig = {
  consecutiveFailures: 3,
  openDuration: { baseMs: 60_000, maxMs: 60_000 },
  halfOpen: { permittedCalls: 1 },
};

let agents: TestAgent[] = [];
let ups: Upstream[] = [];
let dirs: string[] = [];
afterEach(async () => {
  await Promise.all(agents.map((a) => a.close()));
  agents = [];
  await Promise.all(ups.map((u) => u.close()));
  ups = [];
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  dirs = [];
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "bulwark-agent-"));
  dirs.push(d);
  return d;
}

async function failing(): Promise<Upstream> {
  const u = await startUpstream((_req, res) => {
    res.statusCode = 500;
    res.end("x");
  });
  ups.push(u);
  return u;
}

describe("hot reload", () => {
  it("keeps in-flight requests and the breaker's state when its rule did not change", async () => {
    const held: http.ServerResponse[] = [];
    const slow = await startUpstream((_req, res) => held.push(res));
    ups.push(slow);
    const down = await failing();
    const v1 = makeConfig([
      upstreamRule("slow", slow.port, { timeoutMs: 5000 }),
      upstreamRule("down", down.port, { circuitBreaker: breaker }),
    ]);
    const a = await startAgent(v1);
    agents.push(a);
    const port = a.agent.ports.outbound;
    const inflight = send(port, { host: `127.0.0.1:${slow.port}`, agent: false });
    await until(() => held.length === 1);
    for (let i = 0; i < 3; i++) await send(port, { host: `127.0.0.1:${down.port}` });
    expect((await send(port, { host: `127.0.0.1:${down.port}` })).headers["x-bulwark-shed"]).toBe(
      "circuit-open",
    );

    // v2 changes other things (a timeout, a new upstream) but not the breaker rule.
    const v2 = makeConfig(
      [
        upstreamRule("slow", slow.port, { timeoutMs: 6000 }),
        upstreamRule("down", down.port, { circuitBreaker: breaker, timeoutMs: 1000 }),
      ],
      undefined,
      "v2",
    );
    expect(a.source.push(v2)).toMatchObject({ accepted: true, version: "v2" });
    held[0]!.end("finished after reload");
    expect((await inflight).body).toBe("finished after reload");
    expect((await send(port, { host: `127.0.0.1:${down.port}` })).headers["x-bulwark-shed"]).toBe(
      "circuit-open",
    );
    expect(down.hits).toBe(3);

    // v3 changes the breaker rule: a fresh breaker.
    const v3 = makeConfig(
      [upstreamRule("down", down.port, { circuitBreaker: { ...breaker, consecutiveFailures: 4 } })],
      undefined,
      "v3",
    );
    a.source.push(v3);
    expect((await send(port, { host: `127.0.0.1:${down.port}` })).status).toBe(500);
    expect(down.hits).toBe(4);
    const metrics = (await send(a.agent.ports.admin, { path: "/metrics" })).body;
    expect(metrics).toContain(
      'bulwark_circuit_breaker_state{policy="shop/test",upstream="down",state="closed"} 1',
    );
    expect(metrics).toContain(
      'bulwark_circuit_breaker_state{policy="shop/test",upstream="down",state="open"} 0',
    );
    // A rejected config with a changed rule leaves the gauges of the breaker in force alone.
    for (let i = 0; i < 4; i++) await send(port, { host: `127.0.0.1:${down.port}` });
    const bad = makeConfig(
      [
        upstreamRule("down", down.port, { circuitBreaker: { ...breaker, consecutiveFailures: 9 } }),
        // Valid to the schema, refused by a primitive (an abort status below 200): the compile fails.
        upstreamRule("x", 1, { fault: { abort: { percent: 1, status: 150 } } }),
      ],
      undefined,
      "v4",
    );
    const verdict = a.source.push(bad);
    expect(verdict.accepted).toBe(false);
    if (!verdict.accepted) expect(verdict.problems[0]).toMatchObject({ path: "upstreams[1]" });
    const after = (await send(a.agent.ports.admin, { path: "/metrics" })).body;
    expect(after).toContain(
      'bulwark_circuit_breaker_state{policy="shop/test",upstream="down",state="open"} 1',
    );
    const cfg = JSON.parse((await send(a.agent.ports.admin, { path: "/config" })).body);
    expect(cfg.version).toBe("v3");
  });

  it("rejects an invalid config file whole and keeps serving the previous one", async () => {
    const ok = await startUpstream((_req, res) => res.end("ok"));
    ups.push(ok);
    const dir = await tempDir();
    const file = join(dir, "config.yaml");
    await writeFile(file, JSON.stringify(makeConfig([upstreamRule("a", ok.port, { timeoutMs: 1000 })])));
    const source = new FileConfigSource(file, { pollMs: 20, debounceMs: 5 });
    const a = await startAgent(undefined, { source: source as unknown as MemorySource });
    agents.push(a);
    await until(() => a.agent.runtime?.version === "v1", 3000, "v1 applied");
    const readyz = await send(a.agent.ports.admin, { path: "/readyz" });
    expect(readyz.status).toBe(200);

    const rejections = () => a.lines.filter((l) => l.event === "config-rejected").length;
    await writeFile(file, "upstreams: [unclosed");
    await until(() => rejections() === 1, 3000, "bad YAML rejected");
    // Valid YAML, invalid config (an unknown field, a bad port): rejected whole, naming the paths.
    const bad = makeConfig(
      [upstreamRule("a", ok.port), upstreamRule("b", 70000)],
      undefined,
      "v2",
    ) as unknown as Record<string, unknown>;
    await writeFile(file, JSON.stringify({ ...bad, surprise: true }));
    await until(() => rejections() === 2, 3000, "invalid config rejected");
    const last = a.lines.filter((l) => l.event === "config-rejected")[1]!;
    expect(last).toMatchObject({ rejectedVersion: "v2", activeVersion: "v1" });
    expect(String(last.problems)).toContain("upstreams[1].port");
    expect(a.agent.runtime?.version).toBe("v1");
    expect((await send(a.agent.ports.outbound, { host: `127.0.0.1:${ok.port}` })).status).toBe(200);
    const status = JSON.parse((await send(a.agent.ports.admin, { path: "/status" })).body);
    expect(status.lastConfigError.version).toBe("v2");

    // YAML works as well as JSON.
    await writeFile(file, stringifyYaml(makeConfig([upstreamRule("a", ok.port)], undefined, "v3")));
    await until(() => a.agent.runtime?.version === "v3", 3000, "v3 applied");
    // Replaced by rename (editors, ConfigMap symlink swaps), and deleted: the old config keeps serving.
    await writeFile(`${file}.tmp`, JSON.stringify(makeConfig([upstreamRule("a", ok.port)], undefined, "v4")));
    await rename(`${file}.tmp`, file);
    await until(() => a.agent.runtime?.version === "v4", 3000, "v4 applied after rename");
    await rm(file);
    await until(
      () => String(a.lines.filter((l) => l.event === "config-rejected").at(-1)?.problems).includes("ENOENT"),
      3000,
      "missing file rejected",
    );
    expect(a.agent.runtime?.version).toBe("v4");
    expect(a.source.name).toContain("config.yaml");
  });

  it("rejects a config meant for another pod", async () => {
    const a = await startAgent(makeConfig([]));
    agents.push(a);
    const other = { ...makeConfig([], undefined, "v9"), pod: { namespace: "shop", name: "someone-else" } };
    const v = a.source.push(other);
    expect(v.accepted).toBe(false);
    expect(a.agent.runtime?.version).toBe("v1");
  });
});

describe("state across restarts", () => {
  it("restores an open breaker (and the last good config) from --state-dir", async () => {
    const down = await failing();
    const dir = await tempDir();
    const config = makeConfig([upstreamRule("down", down.port, { circuitBreaker: breaker })]);
    const a = await startAgent(config, { settings: { stateDir: dir } });
    for (let i = 0; i < 3; i++) await send(a.agent.ports.outbound, { host: `127.0.0.1:${down.port}` });
    await a.agent.persist();
    await a.close();
    const saved = JSON.parse(await readFile(join(dir, "agent-state.json"), "utf8"));
    expect(saved.breakers[0]).toMatchObject({ upstream: "down", state: "open", trips: 1 });

    // A new agent, a different monotonic clock, and no config from its source yet: it serves the last good
    // config from the state dir with the breaker still open, and does not call the upstream.
    const b = await startAgent(undefined, {
      settings: { stateDir: dir },
      clock: new ManualClock(5),
      source: new MemorySource(),
    });
    agents.push(b);
    expect(b.agent.runtime?.origin).toContain("state-dir");
    expect((await send(b.agent.ports.admin, { path: "/readyz" })).status).toBe(200);
    const r = await send(b.agent.ports.outbound, { host: `127.0.0.1:${down.port}` });
    expect(r.headers["x-bulwark-shed"]).toBe("circuit-open");
    expect(Number(r.headers["retry-after"])).toBeGreaterThan(50);
    expect(down.hits).toBe(3);
    expect(b.lines.some((l) => l.event === "breaker-restored" && l.upstream === "down")).toBe(true);
    // The source then delivers the same config: the restored state stays.
    expect(b.source.push(config)).toMatchObject({ accepted: true, unchanged: false });
    expect(b.agent.runtime?.origin).toBe("memory");
    expect(
      (await send(b.agent.ports.outbound, { host: `127.0.0.1:${down.port}` })).headers["x-bulwark-shed"],
    ).toBe("circuit-open");
  });

  it("ignores breaker states older than the freshness limit, and corrupt files", async () => {
    const dir = await tempDir();
    let now = 1_000_000;
    const store = new StateStore(dir, { maxAgeMs: 60_000, now: () => now });
    await store.save(() => ({
      format: 1,
      savedAt: now,
      breakers: [{ upstream: "a", ruleKey: "k", state: "open", openUntil: now + 600_000, trips: 2 }],
    }));
    expect((await store.load()).state?.breakers).toHaveLength(1);
    now += 61_000;
    expect((await store.load()).state?.breakers).toHaveLength(0);
    await writeFile(join(dir, "agent-state.json"), "{not json");
    const loaded = await store.load();
    expect(loaded.state).toBeUndefined();
    expect(loaded.problem).toContain("not valid JSON");
  });
});
