// The operator's side of config distribution: one long-lived connection per agent, the pod's whole config
// pushed with a version and a nonce whenever the version the operator wants differs from the one the agent
// runs, ACK/NACK back, periodic reports, keepalive both ways. It implements ConfigDistributor for the control
// loop. docs/distribution.md explains the choices and how they compare with xDS.
//
// Flow control, in order of how it protects the operator:
// - TokenReview before the upgrade, reviews cached and capped (agent-authenticator.ts); upgrades waiting for
//   a review and connections in all are bounded, beyond which the agent gets 503 and backs off.
// - Debounce: setDesired marks the pod dirty; pushes go out when the window closes (debouncer.ts). A pod
//   connecting is pushed at once (it is behind by definition), within the throttle.
// - Throttle: at most `maxInflightPushes` agents with a push not yet answered; the others wait their turn in
//   FIFO order. A push to an agent that already has one in flight replaces it (the older is "superseded")
//   and takes no new slot; an unanswered push frees its slot after `ackTimeoutMs`.
// - Each distinct config is serialised once and shared by the pods holding it (config-bodies.ts); a push writes
//   the shared body, then a small per-push tail (the pod's own field, version, nonce), corked into one writev.
// - A bounded per-connection send buffer: an agent that stops reading is cut, never allowed to hold memory.
// - One timer sweeps every connection each keepalive interval (ping the idle, drop the dead, expire hello
//   and ACK waits): no per-connection timers.
import { randomBytes } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  asAck,
  parseAgentMessage,
  protocolSupported,
  type AgentMessage,
  type Hello,
  type OperatorMessage,
  type WireAgentReport,
} from "../api/agent-protocol.js";
import type { SidecarConfig } from "../api/sidecar-config.js";
import type { AgentReport } from "../agent/config-source.js";
import { emptyConfig } from "../compiler/compile-pod.js";
import { systemClock, type Clock, type TimerHandle } from "../controller/clock.js";
import type { Metrics } from "../observability/registry.js";
import { createMetrics } from "../observability/registry.js";
import type { AgentAuthenticator, AuthRefusal } from "./agent-authenticator.js";
import type { ConfigDistributor, PodPropagation } from "./config-distributor.js";
import { ConfigBodies, podJson, pushParts, type SharedBody } from "./config-bodies.js";
import { Debouncer, type DebounceOptions } from "./debouncer.js";
import { NdjsonStream, type CloseReason } from "./ndjson-stream.js";

export interface DistributionServerOptions {
  /** TCP port; 0 picks a free one. The operator's default is 15010 (CONTRACT.md). */
  readonly port: number;
  /** Listen address. Default `0.0.0.0`. */
  readonly host?: string;
  /** PEM certificate and key: serve TLS. Plain HTTP when absent (local runs). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** Who an agent is: TokenReviewAuthenticator over the operator's KubeClient in production. */
  readonly authenticator: AgentAuthenticator;
  /** The operator's metrics; a private registry when absent. */
  readonly metrics?: Metrics<"operator">;
  /** Time for debounce, keepalive and ACK waits. Default the system clock. */
  readonly clock?: Clock;
  /** Debounce window of setDesired. Default quiet 100 ms, max 1000 ms. */
  readonly debounce?: DebounceOptions;
  /** Agents with an unanswered push at most; the rest wait. Default 1000. */
  readonly maxInflightPushes?: number;
  /** A push unanswered this long frees its throttle slot and is not resent on that connection, ms. Default 30 000. */
  readonly ackTimeoutMs?: number;
  /** Per-connection bytes allowed to wait in user space; beyond, the connection is cut. Default 4 MiB. */
  readonly maxBufferedBytes?: number;
  /** Largest message accepted from an agent, bytes. Default 256 KiB. */
  readonly maxFrameBytes?: number;
  /** Ping a connection silent this long, ms. Default 3000. */
  readonly keepaliveIntervalMs?: number;
  /** Drop a connection silent this long, ms. Default 10 000. */
  readonly deadAfterMs?: number;
  /** Time allowed between the upgrade and hello, ms. Default 10 000. */
  readonly helloTimeoutMs?: number;
  /** Connections (authenticated or waiting for hello) at most. Default 50 000. */
  readonly maxConnections?: number;
  /** Upgrades waiting for their TokenReview at most. Default 10 000. */
  readonly maxPendingAuth?: number;
  /**
   * Serve agents only while this is true (the operator passes "this replica leads"); others get 503
   * `not-leader` and retry, reaching the leader through the Service. Default always.
   */
  readonly accepting?: () => boolean;
  /** TCP listen backlog, sized for a reconnect storm. Default 16 384 (the kernel caps it at somaxconn). */
  readonly backlog?: number;
  /** This replica's name, sent in welcome. Default `operator`. */
  readonly operatorId?: string;
  /** Structured log lines (connects, refusals, drops). Default none. */
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
}

/** Where a pod stands, with timing the control loop may use for bulwark_config_propagation_seconds. */
export interface PodPropagationDetail extends PodPropagation {
  /** Clock reading when the current desired version was set. */
  readonly desiredAt?: number;
  /** Clock reading of the last ACK (or of the hello that reported the version). */
  readonly ackedAt?: number;
}

interface Desired {
  version: string;
  /** Until first pushed: then only its serialised form is kept (body, pod), not the object. */
  config: SidecarConfig | undefined;
  setAt: number;
  /** The config minus `pod`, serialised once and shared with every pod holding the same one. */
  body: SharedBody | undefined;
  /** The pod field's JSON, written after the shared body in each push. */
  pod: string;
}

interface PodEntry {
  readonly key: string;
  desired: Desired | undefined;
  conn: Conn | undefined;
  /** The version the agent says it runs (hello, then ACKs). */
  running: string | undefined;
  acked: string | undefined;
  ackedAt: number | undefined;
  rejected: { version: string; reason: string } | undefined;
  report: AgentReport | undefined;
}

interface Conn {
  readonly id: number;
  readonly stream: NdjsonStream;
  readonly remote: string;
  readonly openedAt: number;
  /** `namespace/name` the token is bound to. */
  readonly authPod: string;
  state: "hello" | "ready" | "closed";
  lastHeard: number;
  pod: string | undefined;
  agentVersion: string | undefined;
  outstanding: { nonce: string; version: string; sentAt: number } | undefined;
  /** Versions not to push again on this connection (NACKed or timed out). */
  readonly noRepush: Set<string>;
  /**
   * Nonces pushed on this connection and not answered yet → the version each carried (the last
   * MAX_UNANSWERED_NONCES). Only these may be answered: an ACK or NACK with any other nonce is ignored.
   */
  readonly unanswered: Map<string, string>;
  pingSeq: number;
}

export interface DistributionStats {
  readonly connections: number;
  /** Upgraded sockets still holding a file descriptor (refused and closing ones included). */
  readonly openSockets: number;
  readonly agents: number;
  readonly pods: number;
  readonly inflightPushes: number;
  readonly waitingPushes: number;
  readonly pendingAuth: number;
  readonly bytesSent: number;
  /** Serialised configs kept, one per distinct config in use (not one per pod). */
  readonly configBodies: number;
}

export interface DistributionServer extends ConfigDistributor {
  /** The port actually bound. */
  readonly port: number;
  /** `http://host:port` or `https://…`, for agents' --operator. */
  readonly url: string;
  readonly metrics: Metrics<"operator">;
  propagation(pod: string): PodPropagationDetail;
  /** The latest report of a pod's agent (kept while the pod has a connection or a desired config). */
  report(pod: string): AgentReport | undefined;
  /** Called with each report as it arrives. */
  onReport(listener: (pod: string, report: AgentReport) => void): () => void;
  /** Drops a pod's state (the pod is gone); a connection of it stays but gets no pushes. */
  forget(pod: string): void;
  /** Pods with an authenticated connection. */
  connectedPods(): string[];
  /** Pushes what the debounce window holds now (tests, shutdown). */
  flush(): void;
  stats(): DistributionStats;
  /** Says goodbye to every agent and stops listening. */
  close(): Promise<void>;
}

const REFUSAL_STATUS: Record<AuthRefusal, number> = {
  "no-token": 401,
  "invalid-token": 401,
  "not-pod-bound": 403,
  "review-unavailable": 503,
};

const HTTP_REASON: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  503: "Service Unavailable",
};

/** Starts the server and resolves once it listens. */
export async function startDistributionServer(
  options: DistributionServerOptions,
): Promise<DistributionServer> {
  const server = new Server(options);
  await server.listen();
  return server;
}

class Server implements DistributionServer {
  readonly metrics: Metrics<"operator">;
  private readonly clock: Clock;
  private readonly http: http.Server;
  private readonly debouncer: Debouncer;
  private readonly pods = new Map<string, PodEntry>();
  private readonly bodies = new ConfigBodies();
  private readonly conns = new Set<Conn>();
  /** Every upgraded socket until it closes (refused ones too), so close() can finish them off. */
  private readonly sockets = new Set<Duplex>();
  private readonly dirty = new Set<string>();
  private readonly waiting = new Set<string>();
  private readonly changeListeners = new Set<(pod: string) => void>();
  private readonly reportListeners = new Set<(pod: string, report: AgentReport) => void>();
  private readonly noncePrefix = randomBytes(3).toString("hex");
  private readonly log: (event: string, fields: Record<string, unknown>) => void;
  private readonly o: Required<
    Pick<
      DistributionServerOptions,
      | "maxInflightPushes"
      | "ackTimeoutMs"
      | "maxBufferedBytes"
      | "maxFrameBytes"
      | "keepaliveIntervalMs"
      | "deadAfterMs"
      | "helloTimeoutMs"
      | "maxConnections"
      | "maxPendingAuth"
      | "backlog"
      | "operatorId"
    >
  >;
  private nonceSeq = 0;
  private connSeq = 0;
  private inflight = 0;
  private pendingAuth = 0;
  private agents = 0;
  private bytesClosed = 0;
  private sweepTimer: TimerHandle | undefined;
  private lastSweepAt = 0;
  private closing = false;
  private port_ = 0;

  constructor(private readonly options: DistributionServerOptions) {
    this.metrics = options.metrics ?? createMetrics("operator", { defaultMetrics: false });
    this.clock = options.clock ?? systemClock;
    this.log = options.log ?? (() => undefined);
    this.o = {
      maxInflightPushes: options.maxInflightPushes ?? 1000,
      ackTimeoutMs: options.ackTimeoutMs ?? 30_000,
      maxBufferedBytes: options.maxBufferedBytes ?? 4 * 1024 * 1024,
      maxFrameBytes: options.maxFrameBytes ?? 256 * 1024,
      keepaliveIntervalMs: options.keepaliveIntervalMs ?? 3000,
      deadAfterMs: options.deadAfterMs ?? 10_000,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      maxConnections: options.maxConnections ?? 50_000,
      maxPendingAuth: options.maxPendingAuth ?? 10_000,
      backlog: options.backlog ?? 16_384,
      operatorId: options.operatorId ?? "operator",
    };
    if (this.o.deadAfterMs <= this.o.keepaliveIntervalMs) {
      throw new RangeError("distribution: deadAfterMs must exceed keepaliveIntervalMs");
    }
    this.debouncer = new Debouncer(this.clock, () => this.pushDirty(), options.debounce);
    const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
      if (req.url === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
        return;
      }
      res
        .writeHead(426, {
          "content-type": "application/json",
          upgrade: DISTRIBUTION_UPGRADE,
          connection: "Upgrade",
        })
        .end(JSON.stringify({ code: "upgrade-required", message: `GET ${DISTRIBUTION_PATH} with Upgrade` }));
    };
    this.http = options.tls
      ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, onRequest)
      : http.createServer(onRequest);
    this.http.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      void this.onUpgrade(req, socket, head);
    });
    // A client that never finishes its request line must not hold a socket for long.
    this.http.headersTimeout = 10_000;
    this.http.requestTimeout = 15_000;
  }

  get port(): number {
    return this.port_;
  }

  get url(): string {
    const host =
      this.options.host === undefined || this.options.host === "0.0.0.0" ? "127.0.0.1" : this.options.host;
    return `${this.options.tls ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${this.port_}`;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once("error", reject);
      this.http.listen(
        { port: this.options.port, host: this.options.host ?? "0.0.0.0", backlog: this.o.backlog },
        () => {
          this.http.off("error", reject);
          this.port_ = (this.http.address() as AddressInfo).port;
          this.scheduleSweep();
          resolve();
        },
      );
    });
  }

  // ---- ConfigDistributor ----

  setDesired(pod: string, config: SidecarConfig | undefined): void {
    const cfg = config ?? emptyConfig(splitKey(pod));
    const entry = this.entry(pod);
    const d = entry.desired;
    if (d?.version === cfg.version) return;
    if (d !== undefined && d.body === undefined) {
      // Not serialised yet (an edit within the debounce window): reuse the record, the common case of a burst.
      d.version = cfg.version;
      d.config = cfg;
      d.setAt = this.clock.now();
    } else {
      this.release(d);
      entry.desired = {
        version: cfg.version,
        config: cfg,
        setAt: this.clock.now(),
        body: undefined,
        pod: "",
      };
    }
    this.dirty.add(pod);
    this.debouncer.trigger();
  }

  propagation(pod: string): PodPropagationDetail {
    const e = this.pods.get(pod);
    if (!e) return { connected: false };
    return {
      connected: e.conn?.state === "ready",
      ...(e.desired ? { desiredVersion: e.desired.version, desiredAt: e.desired.setAt } : {}),
      ...(e.acked !== undefined ? { ackedVersion: e.acked, ackedAt: e.ackedAt } : {}),
      ...(e.rejected ? { rejected: { ...e.rejected } } : {}),
    };
  }

  onChange(listener: (pod: string) => void): () => void {
    this.changeListeners.add(listener);
    return () => this.changeListeners.delete(listener);
  }

  // ---- the rest of the public surface ----

  report(pod: string): AgentReport | undefined {
    return this.pods.get(pod)?.report;
  }

  onReport(listener: (pod: string, report: AgentReport) => void): () => void {
    this.reportListeners.add(listener);
    return () => this.reportListeners.delete(listener);
  }

  forget(pod: string): void {
    const e = this.pods.get(pod);
    if (!e) return;
    this.dirty.delete(pod);
    this.waiting.delete(pod);
    this.release(e.desired);
    if (e.conn) e.desired = undefined;
    else this.pods.delete(pod);
  }

  connectedPods(): string[] {
    const out: string[] = [];
    for (const e of this.pods.values()) if (e.conn?.state === "ready") out.push(e.key);
    return out;
  }

  flush(): void {
    this.debouncer.flush();
  }

  stats(): DistributionStats {
    let bytes = this.bytesClosed;
    for (const c of this.conns) bytes += c.stream.bytesSent;
    return {
      connections: this.conns.size,
      openSockets: this.sockets.size,
      agents: this.agents,
      pods: this.pods.size,
      inflightPushes: this.inflight,
      waitingPushes: this.waiting.size,
      pendingAuth: this.pendingAuth,
      bytesSent: bytes,
      configBodies: this.bodies.size,
    };
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.debouncer.cancel();
    if (this.sweepTimer !== undefined) this.clock.clearTimeout(this.sweepTimer);
    for (const c of [...this.conns]) {
      this.send(c, { type: "goodbye", reason: "operator shutting down" });
      this.closeConn(c, "shutdown");
    }
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
    // Goodbyes had their chance to flush; whatever is still open (stalled peers, refusals not yet read) goes.
    const grace = setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 200);
    await closed;
    clearTimeout(grace);
  }

  // ---- connections ----

  private async onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on("error", () => socket.destroy());
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    const path = (req.url ?? "").split("?")[0];
    if (path !== DISTRIBUTION_PATH || (req.headers.upgrade ?? "").toLowerCase() !== DISTRIBUTION_UPGRADE) {
      return refuse(socket, 404, {
        code: "not-found",
        message: `expected GET ${DISTRIBUTION_PATH}, Upgrade: ${DISTRIBUTION_UPGRADE}`,
      });
    }
    if (this.closing)
      return refuse(socket, 503, { code: "shutting-down", message: "operator shutting down" }, 1);
    if (this.options.accepting && !this.options.accepting()) {
      return refuse(socket, 503, { code: "not-leader", message: "this replica does not lead; retry" }, 1);
    }
    if (this.conns.size >= this.o.maxConnections || this.pendingAuth >= this.o.maxPendingAuth) {
      return refuse(
        socket,
        503,
        { code: "overloaded", message: "too many agent connections; retry later" },
        2,
      );
    }
    const auth = req.headers.authorization ?? "";
    const token = /^Bearer\s+(\S+)\s*$/i.exec(auth)?.[1];
    this.pendingAuth++;
    let result;
    try {
      result = await this.options.authenticator.authenticate(token);
    } finally {
      this.pendingAuth--;
    }
    const remote = `${req.socket.remoteAddress ?? "?"}:${req.socket.remotePort ?? "?"}`;
    if (!result.ok) {
      this.metrics.distributionAuthRefusals.inc({ reason: result.reason.replaceAll("-", "_") });
      this.log("agent-refused", { remote, reason: result.reason, message: result.message });
      return refuse(
        socket,
        REFUSAL_STATUS[result.reason],
        { code: result.reason, message: result.message },
        result.reason === "review-unavailable" ? 2 : undefined,
      );
    }
    if (socket.destroyed || this.closing) {
      socket.destroy();
      return;
    }
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nUpgrade: ${DISTRIBUTION_UPGRADE}\r\nConnection: Upgrade\r\n\r\n`,
    );
    const sock = socket as Duplex & {
      setNoDelay?: (v: boolean) => void;
      setKeepAlive?: (on: boolean, ms: number) => void;
    };
    sock.setNoDelay?.(true);
    sock.setKeepAlive?.(true, 30_000);
    const now = this.clock.now();
    const conn: Conn = {
      id: ++this.connSeq,
      remote,
      openedAt: now,
      authPod: result.pod,
      state: "hello",
      lastHeard: now,
      pod: undefined,
      agentVersion: undefined,
      outstanding: undefined,
      noRepush: new Set(),
      unanswered: new Map(),
      pingSeq: 0,
      stream: undefined as unknown as NdjsonStream,
    };
    (conn as { stream: NdjsonStream }).stream = new NdjsonStream(
      socket,
      {
        maxFrameBytes: this.o.maxFrameBytes,
        maxBufferedBytes: this.o.maxBufferedBytes,
        onFrame: (v) => this.onFrame(conn, v),
        onClose: (reason, detail) => this.onStreamClosed(conn, reason, detail),
      },
      head,
    );
    this.conns.add(conn);
  }

  private onFrame(conn: Conn, value: unknown): void {
    if (conn.state === "closed") return;
    conn.lastHeard = this.clock.now();
    const ack = conn.state === "ready" ? asAck(value) : undefined;
    if (ack !== undefined) return this.onAnswer(conn, ack.nonce, { ok: true, version: ack.version });
    const parsed = parseAgentMessage(value);
    if (!parsed.ok && conn.state === "ready" && isReport(value)) {
      // A report this build cannot read (a newer agent?) is not worth the connection: keep the configs flowing.
      this.log("agent-report-invalid", { pod: conn.pod, problem: parsed.problem });
      return;
    }
    if (!parsed.ok) {
      this.send(conn, {
        type: "error",
        code: "bad-message",
        message: parsed.problem.slice(0, PROTOCOL_LIMITS.maxText),
      });
      return this.closeConn(conn, "bad_message");
    }
    const msg: AgentMessage = parsed.message;
    if (conn.state === "hello" && msg.type !== "hello") {
      this.send(conn, { type: "error", code: "bad-message", message: `expected hello, got ${msg.type}` });
      return this.closeConn(conn, "bad_message");
    }
    switch (msg.type) {
      case "hello":
        return this.onHello(conn, msg);
      case "ack":
        return this.onAnswer(conn, msg.nonce, { ok: true, version: msg.version });
      case "nack":
        return this.onAnswer(conn, msg.nonce, {
          ok: false,
          version: msg.rejectedVersion,
          activeVersion: msg.activeVersion,
          reason:
            msg.problems
              .slice(0, 3)
              .map((p) => `${p.path}: ${p.message}`)
              .join("; ") || "rejected without a reason",
        });
      case "report":
        return this.onReportMessage(conn, msg.report);
      case "ping":
        this.send(conn, { type: "pong", id: msg.id });
        return;
      case "pong":
        return;
      case "goodbye":
        this.log("agent-goodbye", { pod: conn.pod, reason: msg.reason });
        return this.closeConn(conn, "closed");
    }
  }

  private onHello(conn: Conn, hello: Hello): void {
    if (conn.state !== "hello") {
      this.send(conn, { type: "error", code: "bad-message", message: "hello sent twice" });
      return this.closeConn(conn, "bad_message");
    }
    if (!protocolSupported(hello.protocol)) {
      this.metrics.distributionAuthRefusals.inc({ reason: "unsupported_protocol" });
      this.send(conn, {
        type: "error",
        code: "unsupported-protocol",
        message: `agent speaks protocol ${hello.protocol}; this operator accepts ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION}`,
        supported: { min: MIN_PROTOCOL_VERSION, max: PROTOCOL_VERSION },
      });
      return this.closeConn(conn, "refused");
    }
    const key = `${hello.pod.namespace}/${hello.pod.name}`;
    if (key !== conn.authPod) {
      this.metrics.distributionAuthRefusals.inc({ reason: "wrong_pod" });
      this.log("agent-refused", {
        remote: conn.remote,
        reason: "wrong-pod",
        claimed: key,
        bound: conn.authPod,
      });
      this.send(conn, {
        type: "error",
        code: "forbidden",
        message: `the token is bound to pod ${conn.authPod}, not ${key}`,
      });
      return this.closeConn(conn, "refused");
    }
    const old = this.pods.get(key)?.conn;
    if (old) {
      this.send(old, {
        type: "error",
        code: "replaced",
        message: "a newer connection for this pod took over",
      });
      this.closeConn(old, "replaced");
    }
    // After the old connection is gone: closing it may have dropped the pod's entry.
    const entry = this.entry(key);
    conn.state = "ready";
    conn.pod = key;
    conn.agentVersion = hello.agentVersion;
    entry.conn = conn;
    entry.running = hello.configVersion;
    if (hello.configVersion !== undefined && hello.configVersion !== entry.acked) {
      entry.acked = hello.configVersion;
      entry.ackedAt = this.clock.now();
    }
    if (entry.acked !== undefined && entry.acked === entry.desired?.version) entry.rejected = undefined;
    this.agents++;
    this.metrics.agentsConnected.set(this.agents);
    this.send(conn, {
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      operator: this.o.operatorId,
      keepaliveIntervalMs: this.o.keepaliveIntervalMs,
      deadAfterMs: this.o.deadAfterMs,
    });
    this.log("agent-connected", {
      pod: key,
      remote: conn.remote,
      agentVersion: hello.agentVersion,
      configVersion: hello.configVersion,
    });
    this.emitChange(key);
    this.tryPush(entry, false);
  }

  private onAnswer(
    conn: Conn,
    nonce: string,
    answer:
      | { ok: true; version: string }
      | { ok: false; version: string | undefined; activeVersion: string | undefined; reason: string },
  ): void {
    const entry = conn.pod !== undefined ? this.pods.get(conn.pod) : undefined;
    if (!entry || entry.conn !== conn) return;
    // An answer must name a push this connection was sent and has not answered, and an ACK the version
    // that push carried. A made-up nonce, one replayed from an earlier answer or another connection, or an
    // ACK before any push says nothing true about what the agent runs, so it must not move the recorded
    // state (fuzzing found an ACK before any push marked any version as acknowledged).
    const pushed = conn.unanswered.get(nonce);
    if (pushed === undefined || (answer.ok && answer.version !== pushed)) {
      this.log("agent-answer-ignored", {
        pod: conn.pod,
        nonce: nonce.slice(0, 100),
        known: pushed !== undefined,
      });
      return;
    }
    conn.unanswered.delete(nonce);
    const out = conn.outstanding;
    const current = out !== undefined && out.nonce === nonce;
    const now = this.clock.now();
    if (answer.ok) {
      // Even a stale ACK (for a push superseded since) says truly what the agent runs now.
      entry.running = answer.version;
      entry.acked = answer.version;
      entry.ackedAt = now;
      if (current) entry.rejected = undefined;
    } else {
      entry.running = answer.activeVersion;
      if (current) {
        const version = answer.version ?? out.version;
        entry.rejected = { version, reason: answer.reason.slice(0, PROTOCOL_LIMITS.maxText) };
        conn.noRepush.add(out.version);
        this.log("config-rejected", { pod: conn.pod, version, reason: entry.rejected.reason });
      }
    }
    if (current) {
      this.metrics.distributionPushes.inc({ result: answer.ok ? "ack" : "nack" });
      this.metrics.distributionAckDuration.observe((now - out.sentAt) / 1000);
      this.settle(conn);
    }
    this.emitChange(entry.key);
    this.tryPush(entry);
  }

  private onReportMessage(conn: Conn, wire: WireAgentReport): void {
    const key = conn.pod;
    const entry = key !== undefined ? this.pods.get(key) : undefined;
    if (!entry || key === undefined) return;
    const report: AgentReport = {
      pod: { namespace: wire.pod.namespace, name: wire.pod.name },
      activeVersion: wire.activeVersion,
      appHealth: wire.appHealth,
      upstreams: wire.upstreams,
      inbound: wire.inbound
        ? {
            inflight: wire.inbound.inflight,
            concurrencyLimit: wire.inbound.concurrencyLimit,
            sheddingLevel: wire.inbound.sheddingLevel,
            shedSinceLastReport: wire.inbound.shedSinceLastReport,
            ...(wire.inbound.completedSinceLastReport === undefined
              ? {}
              : { completedSinceLastReport: wire.inbound.completedSinceLastReport }),
            ...(wire.inbound.failedSinceLastReport === undefined
              ? {}
              : { failedSinceLastReport: wire.inbound.failedSinceLastReport }),
          }
        : undefined,
      at: wire.at,
    };
    entry.report = report;
    for (const l of this.reportListeners) safely(() => l(key, report));
  }

  private onStreamClosed(conn: Conn, reason: CloseReason, detail: string | undefined): void {
    if (reason === "send-buffer") {
      this.metrics.distributionSendBufferOverflows.inc();
      this.log("agent-dropped", { pod: conn.pod, reason: "send-buffer", detail });
    }
    const mapped =
      reason === "send-buffer" ? "send_buffer" : reason === "bad-frame" ? "bad_message" : "closed";
    this.closeConn(conn, mapped);
  }

  /** Ends a connection and updates every piece of state that points at it. Idempotent. */
  private closeConn(conn: Conn, reason: string): void {
    if (conn.state === "closed") {
      return;
    }
    const wasReady = conn.state === "ready";
    conn.state = "closed";
    this.conns.delete(conn);
    this.bytesClosed += conn.stream.bytesSent;
    conn.stream.close();
    if (conn.outstanding) {
      this.metrics.distributionPushes.inc({ result: "lost" });
      this.settle(conn);
    }
    if (!wasReady) return;
    this.metrics.distributionDisconnects.inc({ reason });
    this.agents--;
    this.metrics.agentsConnected.set(this.agents);
    const key = conn.pod;
    const entry = key !== undefined ? this.pods.get(key) : undefined;
    if (!entry || key === undefined || entry.conn !== conn) return;
    entry.conn = undefined;
    entry.running = undefined;
    this.waiting.delete(key);
    this.log("agent-disconnected", { pod: key, reason });
    if (entry.desired === undefined) this.pods.delete(key);
    this.emitChange(key);
  }

  // ---- pushing ----

  private pushDirty(): void {
    for (const key of this.dirty) {
      const e = this.pods.get(key);
      if (e) this.tryPush(e);
    }
    this.dirty.clear();
  }

  /** `queued`: the pod's turn came in the waiting line (settle), so it may not be sent to the back again. */
  private tryPush(entry: PodEntry, respectWindow = true, queued = false): void {
    const conn = entry.conn;
    const d = entry.desired;
    if (!conn || conn.state !== "ready" || !d || this.closing) return;
    if (
      entry.running === d.version ||
      conn.outstanding?.version === d.version ||
      conn.noRepush.has(d.version)
    ) {
      return;
    }
    // A pod changed within the open debounce window goes out when the window closes (unless it just connected).
    if (respectWindow && this.debouncer.pending && this.dirty.has(entry.key)) return;
    if (conn.outstanding === undefined && this.inflight >= this.o.maxInflightPushes) {
      this.waiting.add(entry.key);
      return;
    }
    // A newer version for an agent still answering an older push would take no new slot and so jump the
    // line. While others wait it goes to the back instead: when agents answer more slowly than edits come
    // (10,000 agents, an edit a second), the ones holding slots would otherwise get every version and the
    // waiting ones none. It keeps its slot until the older push is answered.
    if (conn.outstanding !== undefined && !queued && this.waiting.size > 0) {
      this.waiting.add(entry.key);
      return;
    }
    this.waiting.delete(entry.key);
    if (d.body === undefined && d.config !== undefined) {
      d.body = this.bodies.acquire(d.config);
      d.pod = podJson(d.config);
      d.config = undefined;
    }
    if (d.body === undefined) return;
    const nonce = `${this.noncePrefix}-${(++this.nonceSeq).toString(36)}`;
    if (conn.outstanding) this.metrics.distributionPushes.inc({ result: "superseded" });
    else this.inflight++;
    conn.outstanding = { nonce, version: d.version, sentAt: this.clock.now() };
    conn.unanswered.set(nonce, d.version);
    if (conn.unanswered.size > MAX_UNANSWERED_NONCES) {
      conn.unanswered.delete(conn.unanswered.keys().next().value as string);
    }
    const [head, tail] = pushParts(d.version, nonce, d.pod, d.body);
    // On overflow sendRaw returns false and onStreamClosed → closeConn has already settled the push.
    if (conn.stream.sendRaw(head, tail)) this.metrics.distributionSentBytes.inc(head.length + tail.length);
  }

  /** Lets go of a desired config's shared body (the pod was given another config, or forgotten). */
  private release(d: Desired | undefined): void {
    if (d?.body !== undefined) this.bodies.release(d.body);
  }

  /** Frees the throttle slot of a connection's outstanding push and lets the next waiting pod go. */
  private settle(conn: Conn): void {
    if (!conn.outstanding) return;
    conn.outstanding = undefined;
    this.inflight--;
    while (this.inflight < this.o.maxInflightPushes && this.waiting.size > 0) {
      const next = this.waiting.values().next().value as string;
      this.waiting.delete(next);
      const e = this.pods.get(next);
      // Its turn came: it goes now with the latest desired config, even inside a debounce window. Were it put
      // off to the window's end, it would lose its place in the line, and pushDirty would start again from
      // the first pod of the edit; with a new edit before the line has gone round (10,000 agents, an edit a
      // second) the pods at the end of the compiler's order would never be reached.
      if (e) this.tryPush(e, false, true);
    }
  }

  // ---- keepalive, timeouts ----

  private scheduleSweep(): void {
    this.sweepTimer = this.clock.setTimeout(() => {
      this.sweep();
      if (!this.closing) this.scheduleSweep();
    }, this.o.keepaliveIntervalMs);
  }

  private sweep(): void {
    const now = this.clock.now();
    // If this sweep runs late, our own event loop was blocked (a mass push, a GC pause): every peer looks
    // silent because its messages are still queued, unread. Ping, but drop nobody until I/O has been read.
    const gap = now - this.lastSweepAt;
    const late = this.lastSweepAt !== 0 && gap > 2 * this.o.keepaliveIntervalMs;
    this.lastSweepAt = now;
    if (late) this.log("keepalive-sweep-late", { gapMs: Math.round(gap) });
    for (const c of [...this.conns]) {
      if (c.state === "hello") {
        if (now - c.openedAt > this.o.helloTimeoutMs && !late) {
          this.send(c, { type: "error", code: "hello-timeout", message: "no hello in time" });
          this.closeConn(c, "hello_timeout");
        }
        continue;
      }
      const silent = now - c.lastHeard;
      if (silent > this.o.deadAfterMs && !late) {
        this.log("agent-dropped", { pod: c.pod, reason: "keepalive", silentMs: Math.round(silent) });
        this.send(c, {
          type: "error",
          code: "keepalive-timeout",
          message: `nothing heard for ${Math.round(silent)} ms`,
        });
        this.closeConn(c, "keepalive");
        continue;
      }
      if (silent >= this.o.keepaliveIntervalMs) this.send(c, { type: "ping", id: ++c.pingSeq });
      const out = c.outstanding;
      if (out && now - out.sentAt > this.o.ackTimeoutMs && !late) {
        this.metrics.distributionPushes.inc({ result: "timeout" });
        c.noRepush.add(out.version);
        this.log("push-timeout", { pod: c.pod, version: out.version });
        this.settle(c);
      }
    }
  }

  // ---- helpers ----

  private send(conn: Conn, msg: OperatorMessage): void {
    const before = conn.stream.bytesSent;
    if (conn.stream.send(msg)) this.metrics.distributionSentBytes.inc(conn.stream.bytesSent - before);
  }

  private entry(key: string): PodEntry {
    let e = this.pods.get(key);
    if (!e) {
      e = {
        key,
        desired: undefined,
        conn: undefined,
        running: undefined,
        acked: undefined,
        ackedAt: undefined,
        rejected: undefined,
        report: undefined,
      };
      this.pods.set(key, e);
    }
    return e;
  }

  private emitChange(pod: string): void {
    for (const l of this.changeListeners) safely(() => l(pod));
  }
}

/** Unanswered pushes remembered per connection (superseded ones may still be ACKed late, truthfully). */
const MAX_UNANSWERED_NONCES = 16;

function splitKey(pod: string): { namespace: string; name: string } {
  const i = pod.indexOf("/");
  if (i <= 0 || i === pod.length - 1)
    throw new Error(`distribution: pod key must be namespace/name, got "${pod}"`);
  return { namespace: pod.slice(0, i), name: pod.slice(i + 1) };
}

function refuse(
  socket: Duplex,
  status: number,
  body: { code: string; message: string },
  retryAfterS?: number,
): void {
  if (socket.destroyed) return;
  const data = JSON.stringify(body);
  socket.end(
    `HTTP/1.1 ${status} ${HTTP_REASON[status] ?? "Error"}\r\n` +
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(data)}\r\n` +
      (retryAfterS !== undefined ? `retry-after: ${retryAfterS}\r\n` : "") +
      `connection: close\r\n\r\n${data}`,
  );
}

function isReport(v: unknown): boolean {
  return typeof v === "object" && v !== null && (v as { type?: unknown }).type === "report";
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A listener's failure is its own; distribution carries on.
  }
}
