import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadSettings, SettingsError } from "../../operator/agent/settings.js";
import { deadPort, makeConfig, send, startUpstream, until, upstreamRule, type Upstream } from "./harness.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const TSX = join(ROOT, "node_modules/.bin/tsx");

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

describe("settings", () => {
  it("reads flags over environment over defaults", () => {
    const s = loadSettings(["--config", "/c.yaml", "--admin-port", "16000"], {
      BULWARK_POD: "p1",
      BULWARK_NAMESPACE: "shop",
      BULWARK_ADMIN_PORT: "17000",
      BULWARK_STATE_DIR: "/var/lib/bulwark",
    });
    expect(s).toMatchObject({
      configFile: "/c.yaml",
      pod: "p1",
      namespace: "shop",
      adminPort: 16000,
      outboundPort: 15001,
      inboundPort: 15006,
      appPort: 8080,
      stateDir: "/var/lib/bulwark",
      listenAddress: "0.0.0.0",
      reportIntervalMs: 5000,
    });
    expect(loadSettings(["--config", "x"], { BULWARK_REPORT_INTERVAL: "0.5" }).reportIntervalMs).toBe(500);
  });

  it("refuses bad values and combinations with usage errors", () => {
    const bad = (argv: string[], env = {}) => {
      try {
        loadSettings(argv, env);
      } catch (err) {
        expect(err).toBeInstanceOf(SettingsError);
        return (err as Error).message;
      }
      throw new Error("expected a usage error");
    };
    expect(bad([])).toContain("--config");
    expect(bad(["--config", "x", "--admin-port", "99999"])).toContain("--admin-port");
    expect(bad(["--operator", "http://op:15010"])).toContain("--token-file");
    expect(bad(["--config", "x", "--outbound-port", "15000"])).toContain("must differ");
    expect(bad(["--config", "x", "--bogus"])).toContain("bogus");
    expect(bad(["--config", "x", "--report-interval", "0"])).toContain("--report-interval");
    expect(bad(["--config", "x", "--report-interval", "1m"])).toContain("expected seconds");
  });
});

describe("bulwark agent (the real CLI)", () => {
  it("prints help, and exits 2 without a config", () => {
    const help = spawnSync(TSX, ["operator/cli/main.ts", "agent", "--help"], { cwd: ROOT, encoding: "utf8" });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain("--outbound-port");
    const bad = spawnSync(TSX, ["operator/cli/main.ts", "agent"], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, BULWARK_CONFIG: "" },
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("--config");
  });

  it("runs standalone on a config file and proxies a request, then stops on SIGTERM", async () => {
    const up: Upstream = await startUpstream((req, res) => res.end(`hello ${req.url}`));
    cleanup.push(() => up.close());
    const dir = await mkdtemp(join(tmpdir(), "bulwark-cli-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, "config.yaml");
    await writeFile(
      file,
      JSON.stringify(makeConfig([upstreamRule("payments", up.port, { timeoutMs: 2000 })])),
    );
    const [admin, outbound, inbound] = [await deadPort(), await deadPort(), await deadPort()];
    const child = spawn(
      TSX,
      [
        "operator/cli/main.ts",
        "agent",
        "--config",
        file,
        "--admin-port",
        String(admin),
        "--outbound-port",
        String(outbound),
        "--inbound-port",
        String(inbound),
        "--listen-address",
        "127.0.0.1",
        "--state-dir",
        dir,
      ],
      {
        cwd: ROOT,
        env: { ...process.env, BULWARK_POD: "checkout-1", BULWARK_NAMESPACE: "shop" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    cleanup.push(async () => {
      if (child.exitCode === null) child.kill("SIGKILL");
      await exited;
    });
    await until(
      () => out.includes('"event":"config-applied"') || child.exitCode !== null,
      20_000,
      `agent start (stderr: ${err})`,
    );
    expect(child.exitCode).toBeNull();
    const r = await send(outbound, { host: `127.0.0.1:${up.port}`, path: "/via-cli", agent: false });
    expect(r.status).toBe(200);
    expect(r.body).toBe("hello /via-cli");
    expect(r.headers["x-bulwark-attempts"]).toBe("1");
    expect((await send(admin, { path: "/readyz", agent: false })).status).toBe(200);
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    const events = out
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { event: string });
    expect(events.map((e) => e.event)).toEqual(
      expect.arrayContaining(["agent-started", "config-applied", "agent-stopping"]),
    );
  });
});
