// The agent's side of config distribution: a ConfigSource backed by the operator's distribution server.
//
// It keeps one connection up: reads the token file afresh on every attempt (projected tokens rotate), says
// hello with the config version the agent has (restored from its state dir before the operator answered, so
// an unchanged config is not resent), hands every push to the agent and answers with the agent's verdict as
// ACK or NACK, forwards reports, and pings when the operator has been quiet. Any failure (refused, reset,
// silent past the dead-peer timeout) ends in a reconnect after capped exponential backoff with full jitter,
// Bulwark's own backoff primitive. Nothing here ever changes the config in force by itself: while the
// operator is away, the agent keeps enforcing the last config it accepted (fail static).
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import {
  DISTRIBUTION_PATH,
  DISTRIBUTION_UPGRADE,
  PROTOCOL_LIMITS,
  PROTOCOL_VERSION,
  parseOperatorMessage,
  type AgentMessage,
  type OperatorMessage,
} from "../api/agent-protocol.js";
import type { AgentReport, ConfigCandidate, ConfigSource, ConfigVerdict } from "../agent/config-source.js";
import type { AgentSettings } from "../agent/settings.js";
import { backoff, nextDelay, type Backoff } from "../resilience/backoff.js";
import { systemRandom, type Random } from "../resilience/clock.js";
import { NdjsonStream } from "./ndjson-stream.js";

export interface OperatorConfigSourceOptions {
  /** The operator's distribution URL, `http://…` or `https://…` (`--operator`). */
  readonly url: string;
  /** The projected ServiceAccount token (`--token-file`), re-read on every connection attempt. */
  readonly tokenFile: string;
  readonly pod: { readonly namespace: string; readonly name: string };
  /** The config version in force, read at every hello. */
  readonly activeVersion: () => string | undefined;
  /** This build's version, sent in hello. Default `unknown`. */
  readonly agentVersion?: string;
  /** PEM CA bundle to verify an https operator. Default the system CAs. */
  readonly ca?: string | Buffer;
  /** Reconnect backoff, full jitter. Default base 500 ms, max 30 s. */
  readonly backoff?: { readonly baseMs?: number; readonly maxMs?: number };
  readonly random?: Random;
  /** Time allowed from the request to the 101 and then to welcome, ms. Default 10 000. */
  readonly connectTimeoutMs?: number;
  /** Keepalive until the operator's welcome says otherwise, ms. Default 3000 / 10 000. */
  readonly keepaliveIntervalMs?: number;
  readonly deadAfterMs?: number;
  /** Largest message accepted from the operator (a whole config), bytes. Default 8 MiB. */
  readonly maxFrameBytes?: number;
  /** Log lines (connects, refusals, drops). Default none. */
  readonly log?: (event: string, fields: Record<string, unknown>) => void;
}

export type ClientState = "idle" | "connecting" | "hello" | "connected" | "backoff" | "closed";

export class OperatorConfigSource implements ConfigSource {
  readonly name: string;
  private readonly base: URL;
  private readonly backoff: Backoff;
  private readonly random: Random;
  private readonly log: (event: string, fields: Record<string, unknown>) => void;
  private onConfig: ((c: ConfigCandidate) => ConfigVerdict) | undefined;
  private stream: NdjsonStream | undefined;
  private request: http.ClientRequest | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private attempt = 0;
  private prevDelay = 0;
  private lastHeard = 0;
  private pingSeq = 0;
  private interval: number;
  private deadAfter: number;
  private latestReport: AgentReport | undefined;
  private retryAfterMs = 0;
  /** The operator's last error message on this connection, kept for lastError when the connection ends. */
  private operatorError: string | undefined;
  state: ClientState = "idle";
  /** Successful handshakes so far. */
  connects = 0;
  /** Configs received, and what was answered. */
  pushes = 0;
  /** Why the last attempt or connection ended. */
  lastError: string | undefined;

  constructor(private readonly options: OperatorConfigSourceOptions) {
    this.base = new URL(options.url);
    this.name = `operator:${this.base.origin}`;
    this.backoff = backoff({
      baseMs: options.backoff?.baseMs ?? 500,
      maxMs: options.backoff?.maxMs ?? 30_000,
      jitter: "full",
    });
    this.random = options.random ?? systemRandom;
    this.log = options.log ?? (() => undefined);
    this.interval = options.keepaliveIntervalMs ?? 3000;
    this.deadAfter = options.deadAfterMs ?? 10_000;
  }

  subscribe(onConfig: (candidate: ConfigCandidate) => ConfigVerdict): void {
    if (this.onConfig) throw new Error("OperatorConfigSource: subscribe called twice");
    this.onConfig = onConfig;
    void this.connect();
  }

  report(report: AgentReport): void {
    this.latestReport = report;
    if (this.state === "connected") this.sendReport(report);
  }

  close(): Promise<void> {
    if (this.state === "closed") return Promise.resolve();
    this.state = "closed";
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.stopWatchdog();
    this.request?.destroy();
    const s = this.stream;
    this.stream = undefined;
    if (s && !s.isClosed) {
      s.send({ type: "goodbye", reason: "agent stopping" } satisfies AgentMessage);
      s.close(500);
    }
    return Promise.resolve();
  }

  // ---- connecting ----

  private async connect(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "connecting";
    let token: string;
    try {
      token = (await readFile(this.options.tokenFile, "utf8")).trim();
    } catch (err) {
      return this.retry(
        `cannot read token file ${this.options.tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
    if (this.state !== "connecting") return;
    const url = new URL(DISTRIBUTION_PATH, this.base);
    const https_ = url.protocol === "https:";
    let settled = false;
    const once = (fn: () => void) => {
      if (settled) return;
      settled = true;
      this.request = undefined;
      fn();
    };
    const req = (https_ ? https : http).request(url, {
      method: "GET",
      headers: {
        connection: "Upgrade",
        upgrade: DISTRIBUTION_UPGRADE,
        authorization: `Bearer ${token}`,
      },
      ...(https_ && this.options.ca ? { ca: this.options.ca } : {}),
      agent: false,
    });
    this.request = req;
    req.setTimeout(this.options.connectTimeoutMs ?? 10_000, () =>
      req.destroy(new Error("timed out waiting for the operator")),
    );
    req.on("upgrade", (_res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      once(() => this.onUpgraded(socket, head));
    });
    req.on("response", (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        if ((size += c.length) <= 4096) chunks.push(c);
      });
      const done = () =>
        once(() => {
          const body = Buffer.concat(chunks).toString("utf8").slice(0, 1000);
          const retryAfter = Number(res.headers["retry-after"]);
          this.retryAfterMs = Number.isFinite(retryAfter) ? Math.min(retryAfter, 300) * 1000 : 0;
          this.log("operator-refused", { status: res.statusCode, body });
          // A replica that does not lead is no failure of the operator: the Service sent us to the wrong
          // one. Come back after its Retry-After without growing the backoff, so the agent reaches the
          // leader in about a second per wrong replica rather than climbing toward the 30 s cap.
          if (res.statusCode === 503 && /"code"\s*:\s*"not-leader"/.test(body)) this.attempt = 0;
          this.retry(`operator answered ${res.statusCode ?? "?"}: ${body}`);
        });
      res.on("end", done);
      res.on("error", done);
    });
    req.on("error", (err) => once(() => this.retry(`connect: ${err.message}`)));
    req.end();
  }

  private onUpgraded(socket: Duplex, head: Buffer): void {
    if (this.state === "closed") {
      socket.destroy();
      return;
    }
    const sock = socket as Duplex & { setTimeout?: (ms: number) => void; setNoDelay?: (v: boolean) => void };
    sock.setTimeout?.(0);
    sock.setNoDelay?.(true);
    this.state = "hello";
    this.lastHeard = Date.now();
    const stream = new NdjsonStream(
      socket,
      {
        maxFrameBytes: this.options.maxFrameBytes ?? 8 * 1024 * 1024,
        maxBufferedBytes: 1024 * 1024,
        onFrame: (v) => this.onFrame(stream, v),
        onClose: (reason, detail) => {
          if (this.stream !== stream) return;
          this.stream = undefined;
          this.stopWatchdog();
          if (this.state !== "closed")
            this.retry(`connection ended (${reason}${detail ? `: ${detail}` : ""})`);
        },
      },
      head,
    );
    this.stream = stream;
    const configVersion = this.options.activeVersion();
    stream.send({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      pod: { namespace: this.options.pod.namespace, name: this.options.pod.name },
      agentVersion: this.options.agentVersion ?? "unknown",
      ...(configVersion !== undefined ? { configVersion } : {}),
    } satisfies AgentMessage);
    this.startWatchdog();
  }

  private onFrame(stream: NdjsonStream, value: unknown): void {
    if (this.stream !== stream || this.state === "closed") return;
    this.lastHeard = Date.now();
    const parsed = parseOperatorMessage(value);
    if (!parsed.ok) {
      this.log("operator-bad-message", { problem: parsed.problem });
      stream.close(0);
      return;
    }
    const msg: OperatorMessage = parsed.message;
    switch (msg.type) {
      case "welcome":
        this.state = "connected";
        this.connects++;
        this.attempt = 0;
        this.prevDelay = 0;
        this.lastError = undefined;
        this.interval = msg.keepaliveIntervalMs;
        this.deadAfter = msg.deadAfterMs;
        this.startWatchdog();
        this.log("operator-connected", { operator: msg.operator, url: this.base.origin });
        if (this.latestReport) this.sendReport(this.latestReport);
        return;
      case "config":
        // A push before the welcome comes from no operator that accepted this agent's hello (a real one
        // always welcomes first): applying it would let an unverified peer set the data plane.
        if (this.state !== "connected") {
          this.log("operator-bad-message", { problem: "a config before the welcome" });
          stream.close(0);
          return;
        }
        return this.onPush(stream, msg.version, msg.nonce, msg.config);
      case "ping":
        stream.send({ type: "pong", id: msg.id } satisfies AgentMessage);
        return;
      case "pong":
        return;
      case "error":
        this.operatorError = `operator: ${msg.code}: ${msg.message}`;
        this.log("operator-error", { code: msg.code, message: msg.message });
        return;
      case "goodbye":
        this.log("operator-goodbye", { reason: msg.reason });
        // A restart: come back quickly, but spread out (attempt 1 = up to one base delay).
        this.attempt = 0;
        stream.close(0);
        return;
    }
  }

  private onPush(stream: NdjsonStream, version: string, nonce: string, document: unknown): void {
    if (!this.onConfig) return;
    this.pushes++;
    const verdict = this.onConfig({ origin: `operator:${this.base.origin}`, document });
    if (verdict.accepted) {
      stream.send({ type: "ack", version: verdict.version, nonce } satisfies AgentMessage);
      return;
    }
    const max = PROTOCOL_LIMITS.maxText;
    stream.send({
      type: "nack",
      nonce,
      rejectedVersion: (verdict.rejectedVersion ?? version).slice(0, 100),
      ...(verdict.activeVersion !== undefined ? { activeVersion: verdict.activeVersion } : {}),
      problems: verdict.problems
        .slice(0, PROTOCOL_LIMITS.maxProblems)
        .map((p) => ({ path: p.path.slice(0, max), message: p.message.slice(0, max) })),
    } satisfies AgentMessage);
  }

  private sendReport(r: AgentReport): void {
    const report = { ...r, upstreams: r.upstreams.slice(0, PROTOCOL_LIMITS.maxReportUpstreams) };
    // JSON drops the undefined fields the schema has as optional.
    this.stream?.send({ type: "report", report } as AgentMessage);
  }

  // ---- failure handling ----

  private retry(why: string): void {
    if (this.state === "closed") return;
    this.lastError = this.operatorError ? `${why} after ${this.operatorError}` : why;
    this.operatorError = undefined;
    this.state = "backoff";
    this.attempt++;
    const delay = Math.max(
      nextDelay(this.backoff, this.attempt, this.prevDelay, this.random),
      this.retryAfterMs,
    );
    this.prevDelay = delay;
    this.retryAfterMs = 0;
    this.log("operator-reconnect", { in_ms: Math.round(delay), attempt: this.attempt, why });
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
    this.retryTimer.unref();
  }

  private startWatchdog(): void {
    this.stopWatchdog();
    const tick = Math.max(10, Math.min(this.interval, this.deadAfter / 3));
    let lastTick = Date.now();
    this.watchdog = setInterval(() => {
      const s = this.stream;
      const now = Date.now();
      // A late tick means our own event loop was blocked: the operator's messages may be queued, unread.
      const late = now - lastTick > 2 * tick;
      lastTick = now;
      if (!s) return;
      const silent = now - this.lastHeard;
      if (silent > this.deadAfter && !late) {
        this.log("operator-silent", { silentMs: silent });
        // destroy: a dead peer will not take a graceful close; onClose schedules the reconnect.
        s.socket.destroy();
        return;
      }
      if (silent >= this.interval) s.send({ type: "ping", id: ++this.pingSeq } satisfies AgentMessage);
    }, tick);
    this.watchdog.unref();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}

/**
 * The source `bulwark agent --operator URL --token-file FILE` runs with: settings already validated (pod and
 * namespace set), log lines as JSON on stdout next to the agent's recovery log.
 * @param activeVersion the version the agent has in force (restored from --state-dir before connecting).
 */
export function operatorSource(
  settings: AgentSettings,
  activeVersion: () => string | undefined,
  write: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): OperatorConfigSource {
  if (settings.operatorUrl === undefined || settings.tokenFile === undefined) {
    throw new Error("operatorSource: --operator and --token-file are required");
  }
  const base = { component: "bulwark-agent", pod: settings.pod, namespace: settings.namespace };
  return new OperatorConfigSource({
    url: settings.operatorUrl,
    tokenFile: settings.tokenFile,
    pod: { namespace: settings.namespace ?? "", name: settings.pod ?? "" },
    activeVersion,
    agentVersion: packageVersion(),
    ...(settings.operatorCaFile !== undefined ? { ca: readFileSync(settings.operatorCaFile) } : {}),
    log: (event, fields) =>
      write(JSON.stringify({ time: new Date().toISOString(), ...base, event, ...fields })),
  });
}

let cachedVersion: string | undefined;

/** The `version` of the bulwark package this file belongs to (source checkout or built dist/). */
export function packageVersion(): string {
  if (cachedVersion !== undefined) return cachedVersion;
  cachedVersion = "unknown";
  for (const rel of ["../../package.json", "../../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), "utf8")) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === "bulwark" && typeof pkg.version === "string") {
        cachedVersion = pkg.version;
        break;
      }
    } catch {
      // not there: try the next layout
    }
  }
  return cachedVersion;
}
