// Policies the API tests start from: the full example from CONTRACT.md and the smallest valid policy.
// Each call returns a fresh object, so a test may mutate it.

export function contractPolicy(): Record<string, unknown> {
  return {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: { name: "checkout-to-payments", namespace: "shop" },
    spec: {
      selector: { matchLabels: { app: "checkout" } },
      priority: 0,
      mode: "enforce",
      upstreams: [
        {
          name: "payments",
          host: "payments.shop.svc.cluster.local",
          port: 8080,
          timeout: "2s",
          retry: {
            maxAttempts: 3,
            perTryTimeout: "500ms",
            retryOn: ["connect-failure", "reset", "gateway-error", "retriable-status-codes"],
            retriableStatusCodes: [503],
            retryNonIdempotent: false,
            backoff: { base: "25ms", max: "250ms", jitter: "full" },
            budget: { percent: 20, minPerSecond: 10, window: "10s" },
            honorRetryAfter: true,
          },
          circuitBreaker: {
            consecutiveFailures: 5,
            failureRate: { threshold: 50, minimumCalls: 20, window: { type: "time", size: "10s" } },
            slowCall: { duration: "1s", rateThreshold: 80 },
            openDuration: { base: "5s", max: "60s" },
            halfOpen: { permittedCalls: 3 },
          },
          bulkhead: { maxConcurrent: 50, maxQueue: 100, queueTimeout: "100ms", clusterMaxConcurrent: 120 },
          rateLimit: { requestsPerSecond: 100, burst: 50, clusterRequestsPerSecond: 300 },
          fallback: {
            on: ["circuit-open", "bulkhead-full", "rate-limited", "timeout", "upstream-error"],
            static: {
              status: 200,
              headers: { "content-type": "application/json" },
              body: '{"degraded":true}',
            },
          },
          fault: { abort: { percent: 5, status: 503 }, delay: { percent: 10, duration: "200ms" } },
        },
        {
          name: "orders-db",
          protocol: "tcp",
          host: "orders-db.shop.svc.cluster.local",
          port: 5432,
          listenPort: 15432,
          connectTimeout: "1s",
          retry: { maxAttempts: 3, backoff: { base: "50ms", max: "1s", jitter: "full" } },
          circuitBreaker: { consecutiveFailures: 5, openDuration: { base: "5s", max: "60s" } },
          bulkhead: { maxConcurrent: 20, maxQueue: 50, queueTimeout: "2s", clusterMaxConcurrent: 100 },
          fallback: {
            on: ["circuit-open", "upstream-error"],
            upstream: { host: "orders-db-replica.shop.svc.cluster.local", port: 5432 },
          },
        },
      ],
      inbound: {
        port: 8080,
        healthCheck: {
          path: "/healthz",
          interval: "5s",
          timeout: "1s",
          healthyThreshold: 2,
          unhealthyThreshold: 3,
        },
        loadShedding: {
          priorityHeader: "x-bulwark-priority",
          tiers: ["critical", "default", "sheddable"],
          defaultTier: "default",
          adaptive: { algorithm: "gradient2", minLimit: 5, maxLimit: 1000 },
        },
        bulkhead: { maxConcurrent: 200, maxQueue: 50, queueTimeout: "50ms", clusterMaxConcurrent: 500 },
        rateLimit: { requestsPerSecond: 500, burst: 100, clusterRequestsPerSecond: 1200 },
      },
    },
  };
}

/** The smallest valid policy: one HTTP upstream with nothing but its address. */
export function minimalPolicy(): Record<string, unknown> {
  return {
    apiVersion: "resilience.bulwark.dev/v1alpha1",
    kind: "ResiliencePolicy",
    metadata: { name: "minimal" },
    spec: { selector: {}, upstreams: [{ name: "api", host: "api", port: 80 }] },
  };
}

function segments(path: string): (string | number)[] {
  return path
    .split(/\.|(?=\[)/)
    .filter((s) => s !== "")
    .map((s) => (s.startsWith("[") ? Number(s.slice(1, -1)) : s));
}

/** Sets a value at a path like `spec.upstreams[0].retry.backoff.max`, creating objects on the way. */
export function setPath(root: unknown, path: string, value: unknown): void {
  const segs = segments(path);
  let node = root as Record<string | number, unknown>;
  segs.slice(0, -1).forEach((seg, i) => {
    if (node[seg] === undefined) node[seg] = typeof segs[i + 1] === "number" ? [] : {};
    node = node[seg] as Record<string | number, unknown>;
  });
  const last = segs[segs.length - 1] as string | number;
  if (value === undefined) delete node[last];
  else node[last] = value;
}

/** Reads the value at a path like `spec.upstreams[0].timeout`. */
export function getPath(root: unknown, path: string): unknown {
  let node = root;
  for (const seg of segments(path)) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string | number, unknown>)[seg];
  }
  return node;
}

/** A copy of `base` with each `path → value` applied (undefined deletes). */
export function withChanges(
  base: Record<string, unknown>,
  changes: Record<string, unknown>,
): Record<string, unknown> {
  const copy = structuredClone(base);
  for (const [path, value] of Object.entries(changes)) setPath(copy, path, value);
  return copy;
}
