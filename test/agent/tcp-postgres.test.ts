// A real database behind a tcp rule: two PostgreSQL instances (Debian's postgresql 15, a primary and a
// "replica" copied from the same data directory) and a real client, `pg` from npm. Skipped where the server
// binaries are missing. Lean on purpose: small instances without fsync.
import { execFile, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeConfig, until, type TestAgent } from "./harness.js";
import { freePort, startTcpAgent, tcpRule } from "./tcp-harness.js";

const run = promisify(execFile);
const BIN = "/usr/lib/postgresql/15/bin";
const asRoot = process.getuid?.() === 0;
const available = existsSync(`${BIN}/initdb`) && (!asRoot || spawnSync("id", ["postgres"]).status === 0);

/** Runs a PostgreSQL server tool (as the postgres user when we are root: the server refuses root). */
const pgTool = (tool: string, args: string[]) =>
  asRoot ? run("runuser", ["-u", "postgres", "--", `${BIN}/${tool}`, ...args]) : run(`${BIN}/${tool}`, args);

interface Pg {
  readonly port: number;
  readonly dir: string;
  start(): Promise<void>;
  stop(): Promise<void>;
}

function instance(dir: string, port: number): Pg {
  const opts = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40 -c shared_buffers=8MB`;
  return {
    port,
    dir,
    start: async () => {
      await pgTool("pg_ctl", ["-D", `${dir}/data`, "-o", opts, "-l", `${dir}/log`, "-w", "start"]);
    },
    stop: async () => {
      await pgTool("pg_ctl", ["-D", `${dir}/data`, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
    },
  };
}

/** The application name the test's sessions carry, to count them in pg_stat_activity. */
const APP = "bulwark-test";

/**
 * One session through `port` with the `pg` client: connect, run `sql` (several statements allowed), close.
 * The first column of the last statement's first row, or the error text.
 */
async function query(port: number, sql: string): Promise<{ ok: boolean; out: string }> {
  const client = new pg.Client({
    host: "127.0.0.1",
    port,
    user: "postgres",
    database: "postgres",
    application_name: APP,
    connectionTimeoutMillis: 5000,
  });
  client.on("error", () => undefined); // a server gone mid-session surfaces through the query's rejection
  try {
    await client.connect();
    const results = (await client.query(sql)) as unknown as pg.QueryResult | pg.QueryResult[];
    const last = Array.isArray(results) ? results.at(-1)! : results;
    const row = last.rows[0] as Record<string, unknown> | undefined;
    return { ok: true, out: row ? String(Object.values(row)[0]) : "" };
  } catch (err) {
    return { ok: false, out: String(err) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

let root = "";
let primary: Pg;
let replica: Pg;
let agent: TestAgent | undefined;

describe.skipIf(!available)("tcp rules: PostgreSQL behind the agent", () => {
  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), "bulwark-pg-"));
    const [p1, p2] = [await freePort(), await freePort()];
    const uid = asRoot ? Number(spawnSync("id", ["-u", "postgres"], { encoding: "utf8" }).stdout) : -1;
    for (const d of [root, `${root}/primary`, `${root}/replica`]) {
      mkdirSync(d, { recursive: true });
      if (asRoot) chownSync(d, uid, 0);
    }
    const initdb = [
      "-D",
      `${root}/primary/data`,
      "--auth=trust",
      "-U",
      "postgres",
      "--no-sync",
      "-E",
      "UTF8",
    ];
    await pgTool("initdb", initdb);
    // The replica starts from a copy of the same cluster (no streaming replication: it only has to answer).
    const copy = ["-a", `${root}/primary/data`, `${root}/replica/data`];
    await (asRoot ? run("runuser", ["-u", "postgres", "--", "cp", ...copy]) : run("cp", copy));
    primary = instance(`${root}/primary`, p1);
    replica = instance(`${root}/replica`, p2);
    await Promise.all([primary.start(), replica.start()]);
  }, 60_000);

  afterAll(async () => {
    await agent?.close();
    await Promise.all([primary?.stop(), replica?.stop()]);
    if (root) rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it("queries work through the agent, the connection cap holds, a dead primary fails over to the replica and comes back", async () => {
    const listen = await freePort();
    agent = await startTcpAgent(
      makeConfig([
        tcpRule("orders-db", primary.port, listen, {
          connectTimeoutMs: 1000,
          bulkhead: { maxConcurrent: 4, maxQueue: 100, queueTimeoutMs: 20_000 },
          circuitBreaker: {
            consecutiveFailures: 2,
            openDuration: { baseMs: 5000, maxMs: 60000 },
            halfOpen: { permittedCalls: 1 },
          },
          fallback: { on: ["circuit-open"], upstream: { host: "127.0.0.1", port: replica.port } },
        }),
      ]),
    );
    const port = (sql: string) => query(listen, sql);
    expect(await port("select current_setting('port')")).toEqual({ ok: true, out: String(primary.port) });

    // 100 clients at once, each holding its session for a moment: never more than 4 backends for them
    // (the rest wait in the agent's queue, and all get through).
    const seen = await Promise.all(
      Array.from({ length: 100 }, () =>
        port(
          `select pg_sleep(0.1); select count(*) from pg_stat_activity where backend_type = 'client backend' and application_name = '${APP}'`,
        ),
      ),
    );
    expect(seen.every((r) => r.ok)).toBe(true);
    const peak = Math.max(...seen.map((r) => Number(r.out.split("\n").at(-1))));
    expect(peak).toBeGreaterThanOrEqual(2); // 4 here; the sessions overlap
    expect(peak).toBeLessThanOrEqual(4);

    // The primary dies: two failed connects trip the breaker, then sessions land on the replica.
    await primary.stop();
    expect((await port("select 1")).ok).toBe(false);
    expect((await port("select 1")).ok).toBe(false);
    expect(await port("select current_setting('port')")).toEqual({ ok: true, out: String(replica.port) });

    // It comes back: after the open period a trial connection reaches it and the breaker closes.
    await primary.start();
    agent.clock.advance(5000);
    expect(await port("select current_setting('port')")).toEqual({ ok: true, out: String(primary.port) });
    await until(
      () =>
        (agent!.agent.status().tcpUpstreams as { breaker: { state: string } }[])[0]!.breaker.state ===
        "closed",
    );
  }, 60_000);

  it("with a health check, a dead primary holds the breaker open past its open period, and its return half-opens it at once", async () => {
    await agent?.close();
    const listen = await freePort();
    agent = await startTcpAgent(
      makeConfig([
        tcpRule("orders-db", primary.port, listen, {
          connectTimeoutMs: 1000,
          circuitBreaker: {
            consecutiveFailures: 1,
            openDuration: { baseMs: 5000, maxMs: 60000 },
            halfOpen: { permittedCalls: 1 },
          },
          fallback: { on: ["circuit-open"], upstream: { host: "127.0.0.1", port: replica.port } },
          healthCheck: { intervalMs: 100, timeoutMs: 100, healthyThreshold: 1 },
        }),
      ]),
    );
    const port = (sql: string) => query(listen, sql);
    const probe = () =>
      (
        agent!.agent.status().tcpUpstreams as {
          healthCheck: { sawUpstreamDown: boolean; holdingOpen: boolean; lastProbeAgoMs?: number };
        }[]
      )[0]!.healthCheck;
    expect(await port("select current_setting('port')")).toEqual({ ok: true, out: String(primary.port) });

    await primary.stop();
    expect((await port("select 1")).ok).toBe(false);
    await until(() => probe().sawUpstreamDown);
    // Past the 5 s open period the primary is still down: a failed probe holds the breaker open, so
    // sessions stay on the replica and none is spent as a trial on the dead primary.
    agent.clock.advance(5000);
    await until(() => probe().lastProbeAgoMs === 0 && probe().holdingOpen);
    expect(await port("select current_setting('port')")).toEqual({ ok: true, out: String(replica.port) });

    // The primary returns: the next probe half-opens the breaker, without moving the clock.
    await primary.start();
    await until(
      () =>
        (agent!.agent.status().tcpUpstreams as { breaker: { state: string } }[])[0]!.breaker.state ===
        "half-open",
      10_000,
    );
    expect(await port("select current_setting('port')")).toEqual({ ok: true, out: String(primary.port) });
    await until(
      () =>
        (agent!.agent.status().tcpUpstreams as { breaker: { state: string } }[])[0]!.breaker.state ===
        "closed",
    );
  }, 60_000);
});
