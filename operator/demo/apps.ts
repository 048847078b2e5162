// DEMO CODE: the sample workload's apps, small node:http servers standing in for real services.
//
//   checkout  GET /checkout  → calls payments (/charge) and inventory (/reserve) through its agent's
//                              outbound proxy, passes the caller's x-bulwark-priority on, and answers 200
//                              with what each call gave (ok | fallback), or 502 when a call failed outright.
//   payments  GET /charge    → 200, or 503 while `failing`.
//   inventory GET /reserve   → 200 after `delayMs`.
//   all       GET /healthz   → 200, or 503 while `unhealthy`.
//
// The fault script flips `failing`, `delayMs` and `unhealthy` directly: the apps run in the `bulwark up`
// process. They are a few lines each, and a bare node process costs about 40 MB here, so seven more would
// buy nothing. The agents, the part under demonstration, are real child processes (about 75 MB and 10% of
// a core each at 40 req/s, measured on this 2-core machine).
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ServiceName } from "./layout.js";

export interface AppFaults {
  failing: boolean;
  delayMs: number;
  unhealthy: boolean;
}

export interface DemoApp {
  readonly name: string;
  readonly kind: ServiceName;
  readonly port: number;
  readonly faults: AppFaults;
  close(): Promise<void>;
}

export interface CheckoutDeps {
  /** This pod's agent outbound proxy port. */
  readonly outboundPort: number;
  /** Upstream authorities as the policies name them. */
  readonly payments: string;
  readonly inventory: string;
}

const PRIORITY = "x-bulwark-priority";
const json = (
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
) => {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
};

type CallResult = "ok" | "fallback" | "error";

/** One call through the agent's outbound proxy (absolute-form request, as an HTTP_PROXY client sends). */
function callUpstream(
  agent: http.Agent,
  proxyPort: number,
  authority: string,
  path: string,
  priority: string | undefined,
): Promise<CallResult> {
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: proxyPort,
        method: "GET",
        path: `http://${authority}${path}`,
        headers: { host: authority, ...(priority ? { [PRIORITY]: priority } : {}) },
        agent,
        timeout: 10_000,
      },
      (res) => {
        res.resume();
        res.on("end", () => {
          const status = res.statusCode ?? 0;
          if (res.headers["x-bulwark-fallback"]) resolve("fallback");
          else resolve(status >= 200 && status < 300 ? "ok" : "error");
        });
        res.on("error", () => resolve("error"));
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolve("error"));
    req.end();
  });
}

export async function startApp(
  name: string,
  kind: ServiceName,
  port: number,
  checkout?: CheckoutDeps,
): Promise<DemoApp> {
  const faults: AppFaults = { failing: false, delayMs: 0, unhealthy: false };
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      json(res, faults.unhealthy ? 503 : 200, { ok: !faults.unhealthy, pod: name });
      return;
    }
    req.resume();
    if (kind === "checkout" && path === "/checkout" && checkout) {
      const priority = req.headers[PRIORITY] as string | undefined;
      void Promise.all([
        callUpstream(agent, checkout.outboundPort, checkout.payments, "/charge", priority),
        callUpstream(agent, checkout.outboundPort, checkout.inventory, "/reserve", priority),
      ]).then(([payments, inventory]) => {
        const degraded = [
          payments === "fallback" ? "payments" : "",
          inventory === "fallback" ? "inventory" : "",
        ].filter(Boolean);
        if (payments === "error" || inventory === "error") json(res, 502, { pod: name, payments, inventory });
        else
          json(
            res,
            200,
            { pod: name, payments, inventory },
            degraded.length ? { "x-demo-degraded": degraded.join(",") } : {},
          );
      });
      return;
    }
    if (kind === "payments" && path === "/charge") {
      if (faults.failing) json(res, 503, { pod: name, error: "payments is failing (demo fault)" });
      else json(res, 200, { pod: name, charged: true });
      return;
    }
    if (kind === "inventory" && path === "/reserve") {
      const answer = () => json(res, 200, { pod: name, reserved: true });
      if (faults.delayMs > 0) setTimeout(answer, faults.delayMs);
      else answer();
      return;
    }
    json(res, 404, { error: `no route ${path}` });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    name,
    kind,
    port: (server.address() as AddressInfo).port,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
