// Test harness for the agent: scripted upstream servers, an in-process agent on loopback with an in-memory
// config source and a manual clock, and a small HTTP client.
import http from "node:http";
import type { AddressInfo } from "node:net";
import {
  SIDECAR_CONFIG_API_VERSION,
  type HttpUpstreamConfig,
  type InboundConfig,
  type SidecarConfig,
  type UpstreamConfig,
} from "../../operator/api/sidecar-config.js";
import { Agent } from "../../operator/agent/agent.js";
import type {
  AgentReport,
  ConfigCandidate,
  ConfigSource,
  ConfigVerdict,
} from "../../operator/agent/config-source.js";
import type { AgentSettings } from "../../operator/agent/settings.js";
import { ManualClock, seededRandom } from "../../operator/resilience/clock.js";

/** A ConfigSource the test pushes documents into; keeps every verdict. */
export class MemorySource implements ConfigSource {
  readonly name = "memory";
  private onConfig: ((c: ConfigCandidate) => ConfigVerdict) | undefined;
  private initial: unknown;
  readonly verdicts: ConfigVerdict[] = [];
  readonly reports: AgentReport[] = [];
  constructor(initial?: unknown) {
    this.initial = initial;
  }
  subscribe(onConfig: (c: ConfigCandidate) => ConfigVerdict): void {
    this.onConfig = onConfig;
    if (this.initial !== undefined) this.push(this.initial);
  }
  push(document: unknown): ConfigVerdict {
    if (!this.onConfig) throw new Error("not subscribed");
    const v = this.onConfig({ origin: "memory", document });
    this.verdicts.push(v);
    return v;
  }
  report(r: AgentReport): void {
    this.reports.push(r);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export interface Upstream {
  readonly port: number;
  readonly server: http.Server;
  hits: number;
  /** Requests currently being handled. */
  active: number;
  /** Requests whose client connection closed before the handler responded. */
  aborted: number;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, hit: number) => void;

/** A scripted upstream on 127.0.0.1. */
export async function startUpstream(handler: Handler): Promise<Upstream> {
  const u: Upstream = {
    port: 0,
    server: undefined as unknown as http.Server,
    hits: 0,
    active: 0,
    aborted: 0,
    close: () =>
      new Promise<void>((r) => {
        u.server.closeAllConnections();
        u.server.close(() => r());
      }),
  };
  const server = http.createServer((req, res) => {
    const n = ++u.hits;
    u.active++;
    res.once("close", () => {
      u.active--;
      if (!res.writableFinished) u.aborted++;
    });
    handler(req, res, n);
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  (u as { port: number }).port = (server.address() as AddressInfo).port;
  (u as { server: http.Server }).server = server;
  return u;
}

/** A port nobody listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function upstreamRule(
  name: string,
  port: number,
  extra: Partial<HttpUpstreamConfig> = {},
): HttpUpstreamConfig {
  return {
    policy: "shop/test",
    mode: "enforce",
    name,
    protocol: "http",
    host: "127.0.0.1",
    port,
    ...extra,
  };
}

export function makeConfig(
  upstreams: UpstreamConfig[],
  inbound?: InboundConfig,
  version = "v1",
): SidecarConfig {
  return {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version,
    pod: { namespace: "shop", name: "checkout-1" },
    upstreams,
    ...(inbound ? { inbound } : {}),
  };
}

export interface TestAgent {
  readonly agent: Agent;
  readonly source: MemorySource;
  readonly clock: ManualClock;
  readonly lines: Record<string, unknown>[];
  close(): Promise<void>;
}

export async function startAgent(
  config: unknown,
  opts: { settings?: Partial<AgentSettings>; clock?: ManualClock; source?: MemorySource } = {},
): Promise<TestAgent> {
  const clock = opts.clock ?? new ManualClock(1_000_000);
  const source = opts.source ?? new MemorySource(config);
  const lines: Record<string, unknown>[] = [];
  const settings: AgentSettings = {
    configFile: undefined,
    operatorUrl: undefined,
    tokenFile: undefined,
    pod: "checkout-1",
    namespace: "shop",
    adminPort: 0,
    outboundPort: 0,
    inboundPort: 0,
    appPort: 8080,
    stateDir: undefined,
    listenAddress: "127.0.0.1",
    stateMaxAgeMs: 600_000,
    ...opts.settings,
  };
  const agent = new Agent({
    settings,
    source,
    clock,
    random: seededRandom(42),
    host: "127.0.0.1",
    logWrite: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
  });
  await agent.start();
  return { agent, source, clock, lines, close: () => agent.stop(200) };
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** Sends a request to `port` (the agent's outbound or inbound listener) with a Host header. */
export function send(
  port: number,
  opts: {
    host?: string;
    method?: string;
    path?: string;
    headers?: Record<string, string>;
    body?: string;
    agent?: http.Agent | false;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: opts.method ?? "GET",
        path: opts.path ?? "/",
        headers: { ...(opts.host ? { host: opts.host } : {}), ...opts.headers },
        agent: opts.agent ?? keepAlive,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** Polls `check` until it returns true, at most `ms`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  ms = 3000,
  what = "condition",
): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs `n` requests with at most `concurrency` in flight. */
export async function many<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array<T>(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}
