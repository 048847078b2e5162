// One tcp upstream rule, compiled: the connection bulkhead, the connect breaker, the connect retry policy
// and the pre-bound metric children the per-connection path uses. Built by compileRuntime alongside the
// HTTP rules, so breaker state and bulkhead counts carry over a reload exactly as theirs do.
import type { Counter, Histogram } from "prom-client";
import type { TcpUpstreamConfig } from "../api/sidecar-config.js";
import type { Metrics } from "../observability/registry.js";
import { backoff, type Backoff } from "../resilience/backoff.js";
import type { Bulkhead } from "../resilience/bulkhead.js";
import type { BreakerCell } from "./runtime.js";

/** Per-connection outcomes (`bulwark_upstream_requests_total` counts connection attempts for tcp rules). */
export interface TcpRuleMetrics {
  readonly success: Counter<string>;
  readonly failure: Counter<string>;
  readonly rejected: Counter<string>;
  readonly fallback: Counter<string>;
  /** Connect latency (first attempt to established, retries included). */
  readonly connect: Histogram<string>;
  readonly retryAttempted: Counter<string>;
  readonly bulkheadRejected: Counter<string>;
  /** `bulwark_tcp_bytes_total`: app to upstream, upstream to app. */
  readonly bytesSent: Counter<string>;
  readonly bytesReceived: Counter<string>;
  /** `bulwark_tcp_health_probes_total`. */
  readonly probeSuccess: Counter<string>;
  readonly probeFailure: Counter<string>;
}

export class TcpUpstreamRuntime {
  readonly name: string;
  readonly policy: string;
  readonly shadow: boolean;
  readonly host: string;
  readonly port: number;
  readonly listenPort: number;
  readonly connectTimeoutMs: number;
  /** Connect attempts in all (1 = no retry). */
  readonly maxAttempts: number;
  readonly backoff: Backoff | undefined;
  readonly fallback: { readonly host: string; readonly port: number } | undefined;
  readonly fallbackOnOpen: boolean;
  readonly fallbackOnError: boolean;
  readonly m: TcpRuleMetrics;

  constructor(
    readonly rule: TcpUpstreamConfig,
    readonly breaker: BreakerCell | undefined,
    readonly bulkhead: Bulkhead | undefined,
    metrics: Metrics<"agent">,
  ) {
    this.name = rule.name;
    this.policy = rule.policy;
    this.shadow = rule.mode === "shadow";
    this.host = rule.host;
    this.port = rule.port;
    this.listenPort = rule.listenPort;
    this.connectTimeoutMs = rule.connectTimeoutMs;
    this.maxAttempts = rule.retry?.maxAttempts ?? 1;
    this.backoff = rule.retry ? backoff(rule.retry.backoff) : undefined;
    this.fallback = rule.fallback?.upstream;
    this.fallbackOnOpen = rule.fallback?.on.includes("circuit-open") ?? false;
    this.fallbackOnError = rule.fallback?.on.includes("upstream-error") ?? false;
    const upstream = rule.name;
    const out = (outcome: string) =>
      metrics.upstreamRequests.labels({ upstream, outcome }) as unknown as Counter<string>;
    this.m = {
      success: out("success"),
      failure: out("failure"),
      rejected: out("rejected"),
      fallback: out("fallback"),
      connect: metrics.upstreamRequestDuration.labels({ upstream }) as unknown as Histogram<string>,
      retryAttempted: metrics.retries.labels({
        upstream,
        outcome: "attempted",
      }) as unknown as Counter<string>,
      bulkheadRejected: metrics.bulkheadRejected.labels({
        policy: rule.policy,
        upstream,
      }) as unknown as Counter<string>,
      bytesSent: metrics.tcpBytes.labels({ upstream, direction: "sent" }) as unknown as Counter<string>,
      bytesReceived: metrics.tcpBytes.labels({
        upstream,
        direction: "received",
      }) as unknown as Counter<string>,
      probeSuccess: metrics.tcpHealthProbes.labels({
        upstream,
        result: "success",
      }) as unknown as Counter<string>,
      probeFailure: metrics.tcpHealthProbes.labels({
        upstream,
        result: "failure",
      }) as unknown as Counter<string>,
    };
  }
}

/** Fingerprint of a tcp breaker rule: state carries over a reload only into an identical rule. */
export function tcpBreakerKey(u: TcpUpstreamConfig): string {
  return `${u.policy}\0${u.name}\0tcp\0${u.host}:${u.port}\0${JSON.stringify(u.circuitBreaker)}`;
}
