// Authentication against the dev cluster's real TokenRequest/TokenReview: the pod's bound token for the
// `bulwark` audience gets in; no token, a forged one, another audience, an unbound token and a token bound
// to another pod are refused, and every refusal is counted by reason.
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DISTRIBUTION_PATH, DISTRIBUTION_UPGRADE } from "../../operator/api/agent-protocol.js";
import { TokenReviewAuthenticator } from "../../operator/distribution/agent-authenticator.js";
import {
  startDistributionServer,
  type DistributionServer,
} from "../../operator/distribution/distribution-server.js";
import { startTestCluster, type TestCluster } from "./cluster.js";
import { ScriptedAgent, tokenFile, until } from "./helpers.js";

let kube: TestCluster;
let auth: TokenReviewAuthenticator;
let server: DistributionServer;

beforeAll(async () => {
  kube = await startTestCluster();
  await kube.namespace("shop");
  await kube.pod("shop", "web-1");
  await kube.pod("shop", "web-2");
  auth = new TokenReviewAuthenticator(kube.client);
  server = await startDistributionServer({ port: 0, host: "127.0.0.1", authenticator: auth });
});

afterAll(async () => {
  await server?.close();
  await kube?.stop();
});

/** An upgrade request by hand: the HTTP status (101 on success) and the refusal body. */
function upgrade(token: string | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${server.url}${DISTRIBUTION_PATH}`, {
      headers: {
        connection: "Upgrade",
        upgrade: DISTRIBUTION_UPGRADE,
        ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
      },
      agent: false,
    });
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: "" });
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

async function refusals(reason: string): Promise<number> {
  const m = (await server.metrics.registry.getMetricsAsJSON()).find(
    (x) => x.name === "bulwark_distribution_auth_refusals_total",
  );
  return m?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
}

describe("agent authentication (TokenReview on the dev cluster)", () => {
  it("accepts the pod's bound token for audience bulwark, and reviews it once while cached", async () => {
    const token = await kube.token("shop", { pod: "web-1" });
    const agent = new ScriptedAgent({
      url: server.url,
      tokenFile: tokenFile(token),
      pod: { namespace: "shop", name: "web-1" },
    }).start();
    try {
      await until(() => agent.source.state === "connected", 10_000, "connected");
      expect(server.propagation("shop/web-1").connected).toBe(true);
      const reviews = auth.reviews;
      expect((await upgrade(token)).status).toBe(101);
      expect(auth.reviews).toBe(reviews); // served from the cache
    } finally {
      await agent.stop();
    }
  });

  it("refuses no token, a forged token, another audience and an unbound token, counting each", async () => {
    const noToken = await upgrade(undefined);
    expect(noToken.status).toBe(401);
    expect(JSON.parse(noToken.body)).toMatchObject({ code: "no-token" });

    const real = await kube.token("shop", { pod: "web-1" });
    const [h, p] = real.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ sub: "system:serviceaccount:shop:agent" })).toString("base64url")}.${p}`;
    expect((await upgrade(forged)).status).toBe(401);
    expect((await upgrade("not-a-jwt")).status).toBe(401);

    const otherAudience = await kube.token("shop", { audience: "someone-else", pod: "web-1" });
    const r = await upgrade(otherAudience);
    expect(r.status).toBe(401);
    expect(JSON.parse(r.body)).toMatchObject({ code: "invalid-token" });

    const unbound = await kube.token("shop", {});
    const u = await upgrade(unbound);
    expect(u.status).toBe(403);
    expect(JSON.parse(u.body)).toMatchObject({ code: "not-pod-bound" });

    expect(await refusals("no_token")).toBe(1);
    expect(await refusals("invalid_token")).toBe(3);
    expect(await refusals("not_pod_bound")).toBe(1);
  });

  it("refuses a token bound to another pod than the one the agent claims", async () => {
    const web2Token = await kube.token("shop", { pod: "web-2" });
    const impostor = new ScriptedAgent({
      url: server.url,
      tokenFile: tokenFile(web2Token),
      pod: { namespace: "shop", name: "web-1" },
      backoff: { baseMs: 5000, maxMs: 5000 },
    }).start();
    try {
      await until(() => (impostor.source.lastError ?? "").includes("forbidden"), 10_000, "forbidden");
      expect(impostor.source.lastError).toContain("bound to pod shop/web-2");
      expect(await refusals("wrong_pod")).toBe(1);
      expect(server.propagation("shop/web-1").connected).toBe(false);
    } finally {
      await impostor.stop();
    }
  });

  it("refuses the token of a deleted pod once the cache entry has gone", async () => {
    await kube.pod("shop", "gone-1");
    const token = await kube.token("shop", { pod: "gone-1" });
    const fresh = new TokenReviewAuthenticator(kube.client, { ttlMs: 0 });
    expect(await fresh.authenticate(token)).toMatchObject({ ok: true, pod: "shop/gone-1" });
    await kube.deletePod("shop", "gone-1");
    expect(await fresh.authenticate(token)).toMatchObject({ ok: false, reason: "invalid-token" });
  });
});
