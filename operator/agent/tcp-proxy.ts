// The tcp listeners: one on 127.0.0.1:<listenPort> per tcp rule, each client connection run by a
// TcpConnection. `sync` follows the runtime in force: a listener whose port is still in the config is kept
// (it only points at the new rule object, so new connections use the new settings while open ones finish on
// theirs); a listener whose port left the config stops accepting, and its open connections drain: they are
// left to finish for up to the grace period, then cut. Agent shutdown drains everything the same way.
import net from "node:net";
import type { Counter } from "prom-client";
import type { Clock, Random } from "../resilience/clock.js";
import type { RecoveryLog } from "./recovery-log.js";
import { connectOnce, TCP_BUFFER_BYTES } from "./tcp-connect.js";
import { TcpConnection } from "./tcp-connection.js";
import { TcpHealthProbe, type TcpHealthProbeStatus } from "./tcp-health-probe.js";
import type { TcpUpstreamRuntime } from "./tcp-rule.js";
import type { DeadlineQueue } from "./timers.js";

export interface TcpProxyDeps {
  readonly timers: DeadlineQueue;
  readonly clock: Clock;
  readonly random: Random;
  readonly log: RecoveryLog;
  readonly shadowDecisions: Counter<string>;
  /** `bulwark_tcp_bytes_total`: open connections' bytes are added to it at each scrape. */
  readonly bytes: Counter<string>;
  /** Listen address. Default 127.0.0.1 (the app connects to the agent on loopback). */
  readonly host?: string;
  /** How long connections of a removed listener (or at shutdown) may run on. Default 30000. */
  readonly drainGraceMs?: number;
}

/** Open connections one listener accepts at most, bulkhead or not (file descriptors are finite). */
export const MAX_CONNECTIONS_PER_LISTENER = 10_000;

interface Listener {
  readonly port: number;
  readonly server: net.Server;
  rule: TcpUpstreamRuntime;
  probe: TcpHealthProbe | undefined;
  readonly conns: Set<TcpConnection>;
  state: "binding" | "listening" | "failed";
  error: string | undefined;
  readonly bound: Promise<void>;
}

/** What /status shows per tcp rule. */
export interface TcpListenerStatus {
  readonly listening: boolean;
  readonly listenError: string | undefined;
  /** Connections open (or connecting) through the listener now. */
  readonly connections: number;
  /** Of which waiting in the bulkhead queue. */
  readonly queued: number;
  /** The connect probe, when the rule has one (and a breaker for it to feed). */
  readonly healthCheck?: TcpHealthProbeStatus;
}

export class TcpProxy {
  private readonly listeners = new Map<number, Listener>();
  /** Connections of listeners that left the config, finishing within the grace period. */
  private readonly draining = new Set<TcpConnection>();
  private readonly graceMs: number;

  constructor(private readonly deps: TcpProxyDeps) {
    this.graceMs = deps.drainGraceMs ?? 30_000;
    // prom-client calls a metric's `collect` before each scrape; the metric table builds the counter
    // generically, so the hook is set here, where the connections are.
    (deps.bytes as unknown as { collect?: () => void }).collect = () => this.countOpenBytes();
  }

  private countOpenBytes(): void {
    for (const c of this.draining) c.countBytes();
    for (const l of this.listeners.values()) for (const c of l.conns) c.countBytes();
  }

  /** Makes the listeners match `rules`. Binding is asynchronous: `settled()` waits for it. */
  sync(rules: readonly TcpUpstreamRuntime[]): void {
    const wanted = new Map(rules.map((r) => [r.listenPort, r]));
    for (const [port, l] of this.listeners) {
      if (!wanted.has(port)) this.remove(l);
    }
    for (const rule of rules) {
      const l = this.listeners.get(rule.listenPort);
      if (l) {
        if (l.rule !== rule) {
          const probeChanged =
            l.rule.breaker !== rule.breaker ||
            JSON.stringify(l.rule.rule.healthCheck) !== JSON.stringify(rule.rule.healthCheck) ||
            l.rule.host !== rule.host ||
            l.rule.port !== rule.port;
          l.rule = rule;
          if (probeChanged) {
            l.probe?.stop();
            l.probe = this.probeFor(rule);
          }
        }
      } else {
        this.add(rule);
      }
    }
  }

  /** Resolves once every listener has bound (or failed to). */
  async settled(): Promise<void> {
    await Promise.all([...this.listeners.values()].map((l) => l.bound));
  }

  /** Status of the listener serving the rule `name`, if any. */
  status(name: string): TcpListenerStatus | undefined {
    for (const l of this.listeners.values()) {
      if (l.rule.name !== name) continue;
      let queued = 0;
      for (const c of l.conns) if (c.phase === "queued") queued++;
      return {
        listening: l.state === "listening",
        listenError: l.error,
        connections: l.conns.size,
        queued,
        ...(l.probe ? { healthCheck: l.probe.status() } : {}),
      };
    }
    return undefined;
  }

  /** Connections draining after their listener left the config. */
  get drainingCount(): number {
    return this.draining.size;
  }

  /** Stops every listener; open connections drain for up to `graceMs`. Resolves when all are gone. */
  async stop(graceMs = this.graceMs): Promise<void> {
    const all = [...this.listeners.values()];
    this.listeners.clear();
    for (const l of all) {
      l.probe?.stop();
      l.server.close();
    }
    const conns = [...this.draining, ...all.flatMap((l) => [...l.conns])];
    // The deadline queue may be closed right after us: a plain timer cuts what is left.
    const gone = Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.phase === "closed") return resolve();
            c.closedHook = resolve;
          }),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const cut = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const c of conns) c.destroy();
        resolve();
      }, graceMs);
    });
    for (const c of conns) if (c.phase === "queued") c.destroy();
    await Promise.race([gone, cut]);
    clearTimeout(timer);
  }

  private add(rule: TcpUpstreamRuntime): void {
    const server = net.createServer({ allowHalfOpen: true, highWaterMark: TCP_BUFFER_BYTES });
    // A hard bound for rules without a bulkhead: Node closes connections past it at once.
    server.maxConnections = MAX_CONNECTIONS_PER_LISTENER;
    let onBound!: () => void;
    const l: Listener = {
      port: rule.listenPort,
      server,
      rule,
      probe: this.probeFor(rule),
      conns: new Set(),
      state: "binding",
      error: undefined,
      bound: new Promise<void>((r) => (onBound = r)),
    };
    this.listeners.set(rule.listenPort, l);
    server.on("connection", (socket: net.Socket) => {
      const c = new TcpConnection(socket, l.rule, this.deps, (done) => {
        l.conns.delete(done);
        this.draining.delete(done);
      });
      l.conns.add(c);
      void c.run();
    });
    server.once("error", (err: NodeJS.ErrnoException) => {
      l.state = "failed";
      l.error = err.code ?? err.message;
      this.deps.log.emit("config-rejected", {
        listener: "tcp",
        upstream: rule.name,
        listenPort: rule.listenPort,
        problems: [`cannot listen on ${this.deps.host ?? "127.0.0.1"}:${rule.listenPort}: ${l.error}`],
      });
      onBound();
    });
    server.listen({ port: rule.listenPort, host: this.deps.host ?? "127.0.0.1", backlog: 1024 }, () => {
      l.state = "listening";
      onBound();
    });
  }

  private remove(l: Listener): void {
    this.listeners.delete(l.port);
    l.probe?.stop();
    l.server.close();
    for (const c of l.conns) {
      this.draining.add(c);
      c.drain(this.graceMs);
    }
  }

  private probeFor(rule: TcpUpstreamRuntime): TcpHealthProbe | undefined {
    const settings = rule.rule.healthCheck;
    if (!settings || !rule.breaker) return undefined;
    const { host, port, name } = rule;
    const timers = this.deps.timers;
    return new TcpHealthProbe({
      breaker: rule.breaker.breaker,
      settings,
      scheduler: timers,
      clock: this.deps.clock,
      connect: async (timeoutMs) => {
        const r = await connectOnce(host, port, timeoutMs, timers);
        if ("error" in r) return { ok: false, error: r.error };
        r.socket.destroy();
        return { ok: true };
      },
      onProbe: (v) => {
        (v.ok ? rule.m.probeSuccess : rule.m.probeFailure).inc();
        // One line when the probe first finds the upstream down in an open period, one when it comes back.
        if (v.firstFailure || v.action === "half-open") {
          this.deps.log.emit("upstream-health-changed", {
            listener: "tcp",
            upstream: name,
            policy: rule.policy,
            healthy: v.ok,
            breaker: v.action,
            ...(v.error === undefined ? {} : { error: v.error }),
          });
        }
      },
    });
  }
}
