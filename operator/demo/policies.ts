// The demo's ResiliencePolicies: what `bulwark up` applies to namespace `shop`. They target the demo
// services' local ports (127.0.0.1:<port> instead of payments.shop.svc.cluster.local:8080, as there is no
// cluster DNS on one machine); otherwise they are ordinary policies, written to <state-dir>/demo/policies.yaml
// for reading and editing with kubectl. Timings are short so a viewer sees each transition within seconds.
import { NAMESPACE, POLICY_APP_PORT, type Layout } from "./layout.js";

export interface PolicyObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string };
  spec: Record<string, unknown>;
}

const policy = (name: string, spec: Record<string, unknown>): PolicyObject => ({
  apiVersion: "resilience.bulwark.dev/v1alpha1",
  kind: "ResiliencePolicy",
  metadata: { name, namespace: NAMESPACE },
  spec,
});

export const TIERS = ["critical", "default", "sheddable"] as const;
export type Tier = (typeof TIERS)[number];

export function demoPolicies(layout: Layout): PolicyObject[] {
  const local = "127.0.0.1";
  return [
    policy("checkout-to-payments", {
      selector: { matchLabels: { app: "checkout" } },
      upstreams: [
        {
          name: "payments",
          host: local,
          port: layout.servicePorts.payments,
          timeout: "2s",
          retry: {
            maxAttempts: 2,
            perTryTimeout: "1s",
            retryOn: ["connect-failure", "reset", "gateway-error"],
            backoff: { base: "25ms", max: "100ms", jitter: "full" },
            budget: { percent: 20, minPerSecond: 5, window: "10s" },
          },
          circuitBreaker: {
            consecutiveFailures: 5,
            failureRate: { threshold: 50, minimumCalls: 10, window: { type: "time", size: "5s" } },
            openDuration: { base: "2s", max: "4s" },
            halfOpen: { permittedCalls: 3 },
          },
          fallback: {
            on: ["circuit-open", "upstream-error", "timeout"],
            static: {
              status: 200,
              headers: { "content-type": "application/json" },
              body: '{"degraded":true}',
            },
          },
        },
      ],
    }),
    policy("checkout-to-inventory", {
      selector: { matchLabels: { app: "checkout" } },
      upstreams: [
        {
          name: "inventory",
          host: local,
          port: layout.servicePorts.inventory,
          timeout: "5s",
          bulkhead: { maxConcurrent: 100, maxQueue: 100, queueTimeout: "1s" },
        },
      ],
    }),
    policy("checkout-shedding", {
      selector: { matchLabels: { app: "checkout" } },
      inbound: {
        port: POLICY_APP_PORT,
        loadShedding: {
          priorityHeader: "x-bulwark-priority",
          tiers: [...TIERS],
          defaultTier: "default",
          adaptive: { algorithm: "gradient2", minLimit: 12, maxLimit: 24 },
        },
      },
    }),
    policy("payments-capacity", {
      selector: { matchLabels: { app: "payments" } },
      inbound: {
        port: POLICY_APP_PORT,
        healthCheck: {
          path: "/healthz",
          interval: "1s",
          timeout: "500ms",
          healthyThreshold: 1,
          unhealthyThreshold: 2,
        },
        bulkhead: { maxConcurrent: 40, maxQueue: 20, queueTimeout: "200ms", clusterMaxConcurrent: 40 },
        rateLimit: { requestsPerSecond: 200, burst: 100, clusterRequestsPerSecond: 200 },
      },
    }),
    policy("inventory-capacity", {
      selector: { matchLabels: { app: "inventory" } },
      inbound: {
        port: POLICY_APP_PORT,
        healthCheck: {
          path: "/healthz",
          interval: "2s",
          timeout: "1s",
          healthyThreshold: 1,
          unhealthyThreshold: 2,
        },
        bulkhead: { maxConcurrent: 100, maxQueue: 100, queueTimeout: "2s" },
      },
    }),
  ];
}
