/**
 * The operator's two small HTTP servers: `/healthz` and `/readyz` on the health port, Prometheus
 * `/metrics` on the metrics port (served on every replica, leader or not, so scrapes never see
 * "connection refused"). Plain node:http; each binds 127.0.0.1 or all interfaces as asked.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface ServedPort {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export interface HealthChecks {
  /** Liveness: false once the process cannot recover (a watch gave up, leadership lost). */
  live(): { ok: boolean; detail: string };
  /** Readiness: true once the caches have synced. */
  ready(): { ok: boolean; detail: string };
}

async function listen(server: http.Server, port: number, host: string): Promise<ServedPort> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shownHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return {
    port: addr.port,
    url: `http://${shownHost}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function reply(res: http.ServerResponse, code: number, body: string, type = "text/plain; charset=utf-8") {
  res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

/** `/healthz` (liveness) and `/readyz` (readiness): 200 "ok", or 500/503 with the reason. */
export function serveHealth(checks: HealthChecks, port: number, host = "0.0.0.0"): Promise<ServedPort> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" || path === "/livez") {
      const r = checks.live();
      reply(res, r.ok ? 200 : 500, r.ok ? "ok\n" : `${r.detail}\n`);
    } else if (path === "/readyz") {
      const r = checks.ready();
      reply(res, r.ok ? 200 : 503, r.ok ? "ok\n" : `${r.detail}\n`);
    } else {
      reply(res, 404, "not found\n");
    }
  });
  return listen(server, port, host);
}

/** Prometheus `/metrics` from `registry`. */
export function serveMetrics(registry: Registry, port: number, host = "0.0.0.0"): Promise<ServedPort> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path !== "/metrics") {
      reply(res, 404, "not found\n");
      return;
    }
    registry.metrics().then(
      (text) => reply(res, 200, text, registry.contentType),
      (err: unknown) => reply(res, 500, `${(err as Error).message}\n`),
    );
  });
  return listen(server, port, host);
}
