// End to end: real agents (in process, and the `bulwark agent` CLI) against the distribution server on the
// dev cluster, authenticated with their pods' bound tokens through TokenReview. A config pushed shows on the
// agent's admin /config; a bad one is NACKed while the old one keeps serving; losing the operator changes
// nothing; a restarted operator gets the version from the hello and pushes nothing; a restarted agent serves
// its last-known-good config from --state-dir before any operator answers.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../operator/agent/agent.js";
import type { AgentSettings } from "../../operator/agent/settings.js";
import { TokenReviewAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import { operatorSource, type OperatorConfigSource } from "../../operator/distribution/agent-client.js";
import {
  startDistributionServer,
  type DistributionServer,
} from "../../operator/distribution/distribution-server.js";
import { startTestCluster, type TestCluster } from "./cluster.js";
import { config, tokenFile, until } from "./helpers.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const TSX = join(ROOT, "node_modules/.bin/tsx");

let kube: TestCluster;

beforeAll(async () => {
  kube = await startTestCluster();
  await kube.namespace("shop");
  await kube.pod("shop", "web-1");
  await kube.pod("shop", "web-2");
});

afterAll(async () => {
  await kube?.stop();
});

function operator(port = 0): Promise<DistributionServer> {
  return startDistributionServer({
    port,
    host: "127.0.0.1",
    authenticator: new TokenReviewAuthenticator(kube.client),
    debounce: { quietMs: 20, maxMs: 200 },
  });
}

function get(port: number, path: string): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: "127.0.0.1", port, path, agent: false }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, json: body ? JSON.parse(body) : undefined }),
        );
      })
      .on("error", reject);
  });
}

async function served(agent: Agent): Promise<{ version?: string; origin?: string } | undefined> {
  const r = await get(agent.ports.admin, "/config");
  return r.status === 200 ? (r.json as { version?: string; origin?: string }) : undefined;
}

function startAgent(
  url: string,
  token: string,
  stateDir: string,
): { agent: Agent; source: OperatorConfigSource } {
  const settings: AgentSettings = {
    configFile: undefined,
    operatorUrl: url,
    tokenFile: token,
    pod: "web-1",
    namespace: "shop",
    adminPort: 0,
    outboundPort: 0,
    inboundPort: 0,
    appPort: 8080,
    stateDir,
    listenAddress: "127.0.0.1",
    stateMaxAgeMs: 600_000,
  };
  let agent: Agent | undefined = undefined;
  const source = operatorSource(
    settings,
    () => agent?.runtime?.version,
    () => undefined,
  );
  agent = new Agent({ settings, source, logWrite: () => undefined, reportIntervalMs: 200 });
  return { agent, source };
}

describe("a real agent and the distribution server", () => {
  it("config push, NACK, operator loss and restart, agent restart from last-known-good", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "bulwark-dist-state-"));
    const token = tokenFile(await kube.token("shop", { pod: "web-1" }));
    let op = await operator();
    const port = op.port;
    let { agent, source } = startAgent(op.url, token, stateDir);
    await agent.start();
    try {
      // 1. Push → the agent serves it, the operator sees the ACK.
      op.setDesired("shop/web-1", config("shop/web-1", "v1"));
      await until(() => op.propagation("shop/web-1").ackedVersion === "v1", 10_000, "ack v1");
      expect(await served(agent)).toMatchObject({ version: "v1", origin: `operator:${op.url}` });

      // 2. A config the agent's schema refuses → NACK with the reason; v1 keeps serving.
      const bad = config("shop/web-1", "v2-bad");
      (bad.upstreams[0] as { port: number }).port = 70000;
      op.setDesired("shop/web-1", bad);
      await until(() => op.propagation("shop/web-1").rejected !== undefined, 10_000, "nack");
      expect(op.propagation("shop/web-1")).toMatchObject({
        connected: true,
        desiredVersion: "v2-bad",
        ackedVersion: "v1",
        rejected: { version: "v2-bad" },
      });
      expect(op.propagation("shop/web-1").rejected?.reason).toMatch(/upstreams\[0\]\.port/);
      expect(await served(agent)).toMatchObject({ version: "v1" });

      // Reports arrive on the same connection.
      await until(() => op.report("shop/web-1")?.activeVersion === "v1", 5000, "report");
      expect(op.report("shop/web-1")).toMatchObject({ appHealth: "unknown", pod: { name: "web-1" } });

      // 3. The operator goes away: the agent keeps enforcing v1.
      await op.close();
      await until(() => source.state === "backoff" || source.state === "connecting", 5000, "agent noticed");
      expect(await served(agent)).toMatchObject({ version: "v1" });

      // 4. A new operator on the same port learns v1 from the hello and pushes nothing for it.
      op = await operator(port);
      await until(() => op.propagation("shop/web-1").connected, 15_000, "reconnected");
      expect(op.propagation("shop/web-1")).toMatchObject({ ackedVersion: "v1" });
      op.setDesired("shop/web-1", config("shop/web-1", "v1"));
      op.flush();
      await new Promise((r) => setTimeout(r, 200));
      const pushes = (await op.metrics.registry.getMetricsAsJSON()).find(
        (m) => m.name === "bulwark_distribution_pushes_total",
      );
      expect(pushes?.values.reduce((n, v) => n + v.value, 0) ?? 0).toBe(0);
      expect(op.propagation("shop/web-1")).toMatchObject({ desiredVersion: "v1", ackedVersion: "v1" });

      // 5. Agent restart while the operator is down: it serves v1 from its state dir at once.
      await agent.stop(0);
      await op.close();
      ({ agent, source } = startAgent(`http://127.0.0.1:${port}`, token, stateDir));
      await agent.start();
      expect(await served(agent)).toMatchObject({
        version: "v1",
        origin: expect.stringMatching(/^state-dir:/),
      });
      expect(source.connects).toBe(0);
    } finally {
      await agent.stop(0);
      await op.close();
    }
  });

  it("the bulwark agent CLI with --operator and --token-file receives its config and serves it", async () => {
    const op = await operator();
    const token = tokenFile(await kube.token("shop", { pod: "web-2" }));
    const stateDir = mkdtempSync(join(tmpdir(), "bulwark-dist-cli-"));
    const free = async () => {
      const s = http.createServer();
      await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
      const p = (s.address() as AddressInfo).port;
      await new Promise<void>((r) => s.close(() => r()));
      return p;
    };
    const admin = await free();
    const [outbound, inbound] = [await free(), await free()];
    const child = spawn(
      TSX,
      [
        "operator/cli/main.ts",
        "agent",
        "--operator",
        op.url,
        "--token-file",
        token,
        "--pod",
        "web-2",
        "--namespace",
        "shop",
        "--admin-port",
        String(admin),
        "--outbound-port",
        String(outbound),
        "--inbound-port",
        String(inbound),
        "--listen-address",
        "127.0.0.1",
        "--state-dir",
        stateDir,
      ],
      { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => (out += c.toString()));
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
    try {
      op.setDesired("shop/web-2", config("shop/web-2", "cli-v1"));
      await until(
        () => op.propagation("shop/web-2").ackedVersion === "cli-v1" || child.exitCode !== null,
        30_000,
        `agent ack (stderr: ${err})`,
      );
      expect(child.exitCode).toBeNull();
      const cfg = await get(admin, "/config");
      expect(cfg.json).toMatchObject({ version: "cli-v1" });
      expect(out).toContain('"event":"operator-connected"');
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      await until(() => !op.propagation("shop/web-2").connected, 5000, "goodbye seen");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
      await op.close();
    }
  });
});
