// Active health checks of the app, per the inbound rule's healthCheck: GET http://127.0.0.1:appPort<path>
// every interval with a timeout; `healthyThreshold` passes in a row make it healthy, `unhealthyThreshold`
// failures in a row unhealthy (a 2xx or 3xx passes). The result feeds /status and the report to the
// operator; it does not gate traffic (the kubelet's readiness probe does that).
import http from "node:http";
import type { RecoveryLog } from "./recovery-log.js";

export interface HealthCheckSpec {
  readonly appPort: number;
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
}

export type AppHealth = "healthy" | "unhealthy" | "unknown";

export interface HealthStatus {
  readonly state: AppHealth;
  readonly checks: number;
  readonly lastError: string | undefined;
  readonly lastCheckAt: string | undefined;
}

export class HealthChecker {
  private spec: HealthCheckSpec | undefined;
  private key = "";
  private timer: NodeJS.Timeout | undefined;
  private state: AppHealth = "unknown";
  private passes = 0;
  private fails = 0;
  private checks = 0;
  private lastError: string | undefined;
  private lastCheckAt: string | undefined;
  private generation = 0;
  private readonly agent = new http.Agent({ keepAlive: false });

  constructor(private readonly log: RecoveryLog) {}

  /** Starts, restarts or stops checking; a spec equal to the current one changes nothing. */
  configure(spec: HealthCheckSpec | undefined): void {
    const key = JSON.stringify(spec ?? null);
    if (key === this.key) return;
    this.key = key;
    this.stop();
    this.spec = spec;
    this.state = "unknown";
    this.passes = this.fails = 0;
    this.lastError = undefined;
    if (spec) this.schedule(0);
  }

  status(): HealthStatus {
    return {
      state: this.state,
      checks: this.checks,
      lastError: this.lastError,
      lastCheckAt: this.lastCheckAt,
    };
  }

  stop(): void {
    this.generation++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stop();
    this.agent.destroy();
  }

  private schedule(ms: number): void {
    const gen = this.generation;
    this.timer = setTimeout(() => void this.check(gen), ms);
    this.timer.unref();
  }

  private async check(gen: number): Promise<void> {
    const spec = this.spec;
    if (!spec || gen !== this.generation) return;
    const error = await probe(spec, this.agent);
    if (gen !== this.generation) return;
    this.checks++;
    this.lastCheckAt = new Date().toISOString();
    this.lastError = error;
    const before = this.state;
    if (error === undefined) {
      this.passes++;
      this.fails = 0;
      if (this.passes >= spec.healthyThreshold) this.state = "healthy";
    } else {
      this.fails++;
      this.passes = 0;
      if (this.fails >= spec.unhealthyThreshold) this.state = "unhealthy";
    }
    if (before !== this.state) {
      this.log.emit("app-health-changed", {
        from: before,
        to: this.state,
        path: spec.path,
        ...(error ? { error } : {}),
      });
    }
    this.schedule(spec.intervalMs);
  }
}

function probe(spec: HealthCheckSpec, agent: http.Agent): Promise<string | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (v: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(v);
    };
    const req = http.get({ host: "127.0.0.1", port: spec.appPort, path: spec.path, agent }, (res) => {
      res.resume();
      const s = res.statusCode ?? 0;
      finish(s >= 200 && s < 400 ? undefined : `status ${s}`);
    });
    req.on("error", (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
    const timer = setTimeout(() => {
      finish(`no answer within ${spec.timeoutMs} ms`);
      req.destroy();
    }, spec.timeoutMs);
  });
}
