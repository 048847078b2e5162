// The admin listener (15000): /config (the active config and its version), /status (breakers, in-flight,
// queues, limits, app health, last config error), /healthz (the process serves), /readyz (a config is
// active), /metrics (Prometheus text). Read-only; GET and HEAD only. The paths that reveal the config
// (/config, /status) answer 403 to any peer but loopback unless `expose` is set (--admin-expose): the
// listener binds 0.0.0.0 so Prometheus and the kubelet can reach /metrics and the probes from outside the
// pod, and that must not hand every pod in the cluster this pod's upstreams, limits and fallbacks.
import http from "node:http";
import { isIP } from "node:net";
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

export interface AdminOptions {
  /** Serve /config and /status to non-loopback peers too. Default false. */
  readonly expose?: boolean;
}

/** Paths that reveal the config (upstreams, limits, fallback bodies) or the agent's live state. */
const SENSITIVE_PATHS = new Set(["/config", "/status"]);

/** 127.0.0.0/8, ::1, and IPv4 loopback seen through a dual-stack socket (::ffff:127.x.y.z). */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith("::ffff:") ? address.slice(7) : address;
  if (isIP(v4) === 4) return v4.startsWith("127.");
  return address === "::1";
}

export function createAdminServer(h: AdminHandlers, options: AdminOptions = {}): http.Server {
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
    if (!options.expose && SENSITIVE_PATHS.has(path ?? "") && !isLoopback(req.socket.remoteAddress)) {
      json(403, {
        error: `${path} is served to localhost only; start the agent with --admin-expose (BULWARK_ADMIN_EXPOSE=true) to serve it to other hosts`,
      });
      return;
    }
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
