/**
 * The kube client's kept connections (a change made for the operator's throughput): requests
 * share a socket, and a kept socket the server closed is retried once for idempotent requests
 * only (DESIGN.md "Known traps").
 */
import https from "node:https";
import type { AddressInfo } from "node:net";
import { KubeConfig } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateTls } from "../../operator/devcluster/tls.js";
import { KubeClient } from "../../operator/kube/client.js";

let server: https.Server;
let kc: KubeConfig;
const sockets = new Set<unknown>();
/** Request numbers (1-based) at which the server drops the connection instead of answering. */
const dropAt = new Set<number>();
let requests = 0;

beforeAll(async () => {
  const tls = generateTls();
  server = https.createServer(
    { cert: tls.certPem, key: tls.keyPem, keepAliveTimeout: 60_000 },
    (req, res) => {
      requests++;
      sockets.add(req.socket);
      if (dropAt.has(requests)) {
        req.socket.destroy(); // as a server closing an idle kept connection just as a request arrives
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ kind: "Status", n: requests }));
    },
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: "c",
        server: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
        caData: Buffer.from(tls.caPem).toString("base64"),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: "u", token: "t" }],
    contexts: [{ name: "x", cluster: "c", user: "u" }],
    currentContext: "x",
  });
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe("KubeClient keep-alive", () => {
  it("reuses one connection for sequential requests", async () => {
    const client = new KubeClient(kc);
    sockets.clear();
    for (let i = 0; i < 5; i++) await client.request({ method: "GET", path: "/api/v1/namespaces" });
    expect(sockets.size).toBe(1);
    client.close();
  });

  it("retries a GET once on a fresh socket when the kept one was reset; never a POST", async () => {
    const client = new KubeClient(kc);
    await client.request({ method: "GET", path: "/api" }); // opens the kept socket
    dropAt.add(requests + 1);
    const r = await client.request<{ n: number }>({ method: "GET", path: "/api" });
    expect(r.n).toBe(requests); // answered by the retry
    dropAt.add(requests + 1);
    await expect(client.request({ method: "POST", path: "/api/v1/events", body: {} })).rejects.toThrow(
      /socket hang up|ECONNRESET/,
    );
    client.close();
  });
});
