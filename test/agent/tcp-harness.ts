// Test helpers for the agent's tcp rules: loopback TCP servers (echo, or resetting every connection), an
// in-process agent with a short drain grace, and a small client that collects what it receives.
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { TcpUpstreamConfig } from "../../operator/api/sidecar-config.js";
import { Agent } from "../../operator/agent/agent.js";
import { ManualClock, seededRandom } from "../../operator/resilience/clock.js";
import { MemorySource, type TestAgent } from "./harness.js";

export interface TcpServer {
  port: number;
  /** Connections accepted so far. */
  accepted: number;
  /** Connections open now. */
  readonly open: Set<net.Socket>;
  /** echo: sends back what it gets, ends when the client ends; reset: resets every connection at once. */
  mode: "echo" | "reset";
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 (on `port` when given). */
export async function startTcpServer(mode: "echo" | "reset" = "echo", port = 0): Promise<TcpServer> {
  const s: TcpServer = {
    port: 0,
    accepted: 0,
    open: new Set(),
    mode,
    close: () =>
      new Promise<void>((r) => {
        for (const c of s.open) c.destroy();
        server.close(() => r());
      }),
  };
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    s.accepted++;
    s.open.add(c);
    c.on("close", () => s.open.delete(c));
    c.on("error", () => c.destroy());
    if (s.mode === "reset") {
      c.resetAndDestroy();
      return;
    }
    c.pipe(c);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  s.port = (server.address() as AddressInfo).port;
  return s;
}

/** A port nobody listens on (bound, then closed). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export function tcpRule(
  name: string,
  port: number,
  listenPort: number,
  extra: Partial<TcpUpstreamConfig> = {},
): TcpUpstreamConfig {
  return {
    policy: "shop/db",
    mode: "enforce",
    name,
    protocol: "tcp",
    host: "127.0.0.1",
    port,
    listenPort,
    connectTimeoutMs: 500,
    ...extra,
  };
}

export async function startTcpAgent(
  config: unknown,
  drainGraceMs = 300,
  stateDir?: string,
): Promise<TestAgent> {
  const clock = new ManualClock(1_000_000);
  const source = new MemorySource(config);
  const lines: Record<string, unknown>[] = [];
  const agent = new Agent({
    settings: {
      configFile: undefined,
      operatorUrl: undefined,
      tokenFile: undefined,
      pod: "checkout-1",
      namespace: "shop",
      adminPort: 0,
      outboundPort: 0,
      inboundPort: 0,
      appPort: 8080,
      stateDir,
      listenAddress: "127.0.0.1",
      stateMaxAgeMs: 600_000,
    },
    source,
    clock,
    random: seededRandom(7),
    host: "127.0.0.1",
    tcpDrainGraceMs: drainGraceMs,
    logWrite: (l) => lines.push(JSON.parse(l) as Record<string, unknown>),
  });
  await agent.start();
  await agent.tcp.settled();
  return { agent, source, clock, lines, close: () => agent.stop(200) };
}

/** A client connection that collects what it receives. */
export interface Client {
  readonly socket: net.Socket;
  received(): string;
  /** Resolves when the peer ended (or the socket closed), with everything received. */
  readonly ended: Promise<string>;
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>;
  /** Writes `text` and waits until at least that many more bytes came back. */
  echo(text: string, ms?: number): Promise<string>;
}

export function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let total = 0;
    const waiters: (() => void)[] = [];
    socket.on("data", (b: Buffer) => {
      chunks.push(b);
      total += b.length;
      for (const w of waiters.splice(0)) w();
    });
    const received = () => Buffer.concat(chunks).toString();
    const ended = new Promise<string>((r) => {
      socket.once("end", () => r(received()));
      socket.once("close", () => r(received()));
    });
    const closed = new Promise<void>((r) => socket.once("close", () => r()));
    socket.on("error", () => undefined);
    socket.once("connect", () =>
      resolve({
        socket,
        received,
        ended,
        closed,
        echo: (text, ms = 2000) =>
          new Promise<string>((res, rej) => {
            const want = total + Buffer.byteLength(text);
            const start = chunks.length;
            const t = setTimeout(() => rej(new Error(`no echo of ${text} within ${ms} ms`)), ms);
            const check = () => {
              if (total >= want) {
                clearTimeout(t);
                res(Buffer.concat(chunks.slice(start)).toString());
              } else if (socket.destroyed || socket.readableEnded) {
                clearTimeout(t);
                rej(new Error("closed before the echo"));
              } else waiters.push(check);
            };
            socket.write(text);
            waiters.push(check);
          }),
      }),
    );
    socket.once("error", reject);
  });
}

/** Reads /status or /metrics from the agent's admin port. */
export async function admin(a: TestAgent, path: "/status" | "/metrics"): Promise<string> {
  const r = await fetch(`http://127.0.0.1:${a.agent.ports.admin}${path}`);
  return r.text();
}
