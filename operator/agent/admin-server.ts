// The admin listener (15000): /config (the active config and its version), /status (breakers, in-flight,
// queues, limits, app health, last config error), /healthz (the process serves), /readyz (a config is
// active), /metrics (Prometheus text). Read-only; GET and HEAD only.
import http from "node:http";
import type { Registry } from "prom-client";

export interface AdminHandlers {
  /** The active config document with version, origin and time applied; undefined before the first. */
  config(): unknown;
  status(): unknown;
  ready(): boolean;
  /** Refreshes read-on-scrape gauges. */
  beforeScrape(): void;
  readonly registry: Registry;
}

export function createAdminServer(h: AdminHandlers): http.Server {
  const server = http.createServer({ maxHeaderSize: 16 * 1024 }, (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain" }).end("method not allowed\n");
      return;
    }
    const json = (status: number, body: unknown) => {
      const text = JSON.stringify(body, null, 2) + "\n";
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(text),
      });
      res.end(req.method === "HEAD" ? undefined : text);
    };
    switch (path) {
      case "/healthz":
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      case "/readyz":
        if (h.ready()) res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
        else res.writeHead(503, { "content-type": "text/plain" }).end("no config active yet\n");
        return;
      case "/config": {
        const c = h.config();
        if (c === undefined) json(404, { error: "no config active yet" });
        else json(200, c);
        return;
      }
      case "/status":
        json(200, h.status());
        return;
      case "/metrics":
        h.beforeScrape();
        h.registry.metrics().then(
          (text) => {
            res.writeHead(200, { "content-type": h.registry.contentType }).end(text);
          },
          (err: unknown) => {
            res
              .writeHead(500, { "content-type": "text/plain" })
              .end(`metrics failed: ${(err as Error).message}\n`);
          },
        );
        return;
      default:
        json(404, {
          error: `no such path ${path}`,
          paths: ["/config", "/status", "/healthz", "/readyz", "/metrics"],
        });
    }
  });
  server.on("clientError", (_err, socket) => socket.destroy());
  return server;
}
