// The sidecar configs the data-plane bench and the profiling scripts (scripts/profile/) run the agent with:
// passthrough (no rules), or the full rule set on one upstream — every primitive on the request path, set so
// that none of them ever rejects, so the figures measure their cost and not their decisions.
import { SIDECAR_CONFIG_API_VERSION, type SidecarConfig } from "../operator/api/sidecar-config.js";

export function benchConfig(upstreamPort: number, full: boolean): SidecarConfig {
  return {
    apiVersion: SIDECAR_CONFIG_API_VERSION,
    kind: "SidecarConfig",
    version: full ? "full" : "passthrough",
    pod: { namespace: "bench", name: "bench-0" },
    upstreams: full
      ? [
          {
            policy: "bench/full",
            mode: "enforce",
            name: "up",
            protocol: "http",
            host: "127.0.0.1",
            port: upstreamPort,
            timeoutMs: 2000,
            retry: {
              maxAttempts: 3,
              perTryTimeoutMs: 500,
              retryOn: ["connect-failure", "reset", "gateway-error"],
              retriableStatusCodes: [503],
              retryNonIdempotent: false,
              backoff: { baseMs: 25, maxMs: 250, jitter: "full" },
              budget: { percent: 20, minPerSecond: 10, windowMs: 10_000 },
              honorRetryAfter: true,
              maxReplayBodyBytes: 65536,
            },
            circuitBreaker: {
              consecutiveFailures: 5,
              failureRate: {
                thresholdPercent: 50,
                minimumCalls: 20,
                window: { type: "time", sizeMs: 10_000 },
              },
              slowCall: { durationMs: 1000, rateThresholdPercent: 80 },
              openDuration: { baseMs: 5000, maxMs: 60_000 },
              halfOpen: { permittedCalls: 3 },
            },
            bulkhead: { maxConcurrent: 1000, maxQueue: 100, queueTimeoutMs: 100 },
            rateLimit: { requestsPerSecond: 1_000_000, burst: 100_000 },
            fallback: {
              on: ["circuit-open", "bulkhead-full"],
              action: { kind: "static", status: 200, headers: {}, body: "degraded" },
            },
          },
        ]
      : [],
  };
}
