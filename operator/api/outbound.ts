// Outbound rules: how the selected pods call one upstream (an HTTP service or a TCP endpoint such as a
// database). The agent applies them in the order rate limit → bulkhead → breaker → retry → timeout.
import { z } from "zod";
import { HTTP_UPSTREAM_DEFAULTS } from "./defaults.js";
import { DURATION_MAX_LENGTH, DURATION_PATTERN } from "./duration.js";
import { boundedMap, dnsLabel, duration, host, httpStatus, longDuration, percent, port } from "./fields.js";
import { Bulkhead, RateLimit } from "./limits.js";
import { HTTP_ONLY_FIELDS, RULES, WINDOW_LIMITS, withRules } from "./rules.js";

export const RETRY_ON = [
  "connect-failure",
  "refused-stream",
  "reset",
  "gateway-error",
  "5xx",
  "retriable-status-codes",
] as const;

export const JITTER = ["none", "full", "equal", "decorrelated"] as const;

export const FALLBACK_ON = [
  "circuit-open",
  "bulkhead-full",
  "rate-limited",
  "timeout",
  "upstream-error",
] as const;

export const Backoff = withRules(
  z.strictObject({
    base: duration()
      .default("25ms")
      .describe("Backoff before the first retry; doubles for each later one (duration)."),
    max: duration().default("250ms").describe("Cap on any one backoff (duration); must be >= base."),
    jitter: z
      .enum(JITTER)
      .default("full")
      .describe(
        "Randomisation of the n-th retry's backoff (n = 1 first), with exp = min(max, base·2^(n-1)): none " +
          "(exactly exp), full (uniform in [0, exp)), equal (exp/2 + uniform in [0, exp/2)), decorrelated " +
          "(uniform in [base, 3·previous)); always capped by max.",
      ),
  }),
  [RULES.backoffMaxGteBase],
).describe("Capped exponential backoff between tries, with a named jitter algorithm.");

export const RetryBudget = z
  .strictObject({
    percent: percent()
      .default(20)
      .describe("Retries allowed as a percentage of the requests seen in the window (0–100)."),
    minPerSecond: z
      .int()
      .min(0)
      .max(100_000)
      .default(10)
      .describe("Retries per second always allowed, whatever the percentage (a floor for low traffic)."),
    window: duration()
      .default("10s")
      .describe("Period over which requests and retries are counted (duration)."),
  })
  .describe(
    "A retry budget per pod and upstream: once retries exceed it, failed tries are not retried, which stops retry storms.",
  );

export const Retry = withRules(
  z.strictObject({
    maxAttempts: z
      .int()
      .min(1)
      .max(10)
      .default(3)
      .describe("Tries in all, the first included (1 = no retries). For tcp upstreams: connect attempts."),
    perTryTimeout: duration()
      .optional()
      .describe(
        "Timeout of each try (duration); must be <= timeout. HTTP only. Unset: each try may use what is left of timeout.",
      ),
    retryOn: z
      .array(z.enum(RETRY_ON))
      .min(1)
      .max(RETRY_ON.length)
      .optional()
      .meta({ "x-kubernetes-list-type": "set" })
      .describe(
        "Failures that are retried: connect-failure, refused-stream, reset (connection reset before a response), " +
          "gateway-error (502, 503, 504), 5xx, retriable-status-codes (the codes below). HTTP only. " +
          `Default (http): [${HTTP_UPSTREAM_DEFAULTS.retryOn.join(", ")}].`,
      ),
    retriableStatusCodes: z
      .array(httpStatus())
      .max(16)
      .optional()
      .meta({ "x-kubernetes-list-type": "set" })
      .describe("HTTP status codes retried when retryOn has retriable-status-codes. HTTP only. Unset: none."),
    retryNonIdempotent: z
      .boolean()
      .optional()
      .describe(
        "Retry non-idempotent methods (POST, PATCH, …) too. HTTP only. " +
          `Default (http): ${HTTP_UPSTREAM_DEFAULTS.retryNonIdempotent}.`,
      ),
    backoff: Backoff.prefault({}).describe(
      "Backoff between tries. Default: base 25ms, max 250ms, jitter full (Envoy's numbers).",
    ),
    budget: RetryBudget.prefault({}).describe(
      "Retry budget. Default: 20% of requests plus 10 per second, over 10s (Linkerd's numbers).",
    ),
    honorRetryAfter: z
      .boolean()
      .optional()
      .describe(
        "Wait as long as a 429/503 response's Retry-After header asks (within what is left of timeout) " +
          `instead of the backoff. HTTP only. Default (http): ${HTTP_UPSTREAM_DEFAULTS.honorRetryAfter}.`,
      ),
  }),
  [RULES.retriableStatusCodesNeedCondition, RULES.retryOnStatusCodesNeedCodes],
).describe("Retries of failed tries, with backoff and a budget. Unset: no retries.");

export const SlidingWindow = withRules(
  z.strictObject({
    type: z
      .enum(["count", "time"])
      .describe("count: the last `size` calls; time: the calls of the last `size` (a duration)."),
    size: z
      .union([
        z.int().min(WINDOW_LIMITS.count.min).max(WINDOW_LIMITS.count.max),
        z.string().max(DURATION_MAX_LENGTH).regex(new RegExp(DURATION_PATTERN)),
      ])
      .describe(
        `A number of calls (${WINDOW_LIMITS.count.min}–${WINDOW_LIMITS.count.max}) for a count window, ` +
          `a duration (${WINDOW_LIMITS.time.min}–${WINDOW_LIMITS.time.max}) for a time window.`,
      ),
  }),
  [RULES.windowSizeCount, RULES.windowSizeTime],
).describe("The window failures are counted over.");

export const FailureRate = withRules(
  z.strictObject({
    threshold: percent()
      .min(1)
      .default(50)
      .describe("Failure percentage in the window at or above which the breaker opens (1–100)."),
    minimumCalls: z
      .int()
      .min(1)
      .max(WINDOW_LIMITS.count.max)
      .default(20)
      .describe("Calls the window must hold before the rate is judged (no opening on 1 failure of 2 calls)."),
    window: SlidingWindow.default({ type: "time", size: "10s" }).describe("The window. Default: time, 10s."),
  }),
  [RULES.minimumCallsFitCountWindow],
).describe("Open when the failure rate over a window reaches a threshold. Unset: no rate-based trip.");

export const SlowCall = z
  .strictObject({
    duration: duration()
      .default("1s")
      .describe("A call slower than this counts as slow (duration); must be < timeout."),
    rateThreshold: percent()
      .min(1)
      .default(80)
      .describe(
        "Percentage of slow calls in the failure-rate window at or above which the breaker opens (1–100).",
      ),
  })
  .describe("Open when too many calls are slow, before they fail. HTTP only. Unset: slowness does not trip.");

export const OpenDuration = withRules(
  z.strictObject({
    base: duration()
      .default("5s")
      .describe("How long the breaker stays open after its first trip (duration)."),
    max: duration()
      .default("60s")
      .describe(
        "Cap on the open time, which doubles on each trip that follows a failed half-open probe (duration).",
      ),
  }),
  [RULES.openDurationMaxGteBase],
).describe("How long the breaker stays open before letting probe calls through.");

export const CircuitBreaker = withRules(
  z.strictObject({
    consecutiveFailures: z
      .int()
      .min(0)
      .max(1000)
      .default(5)
      .describe(
        "Consecutive failures that open the breaker; 0 turns this trip off (then set failureRate or slowCall).",
      ),
    failureRate: FailureRate.optional(),
    slowCall: SlowCall.optional(),
    openDuration: OpenDuration.prefault({}).describe("Open duration. Default: base 5s, max 60s."),
    halfOpen: z
      .strictObject({
        permittedCalls: z
          .int()
          .min(1)
          .max(100)
          .default(3)
          .describe(
            "Probe calls let through while half-open; all must succeed to close, one failure re-opens.",
          ),
      })
      .prefault({})
      .describe("The half-open state. Default: 3 probe calls."),
  }),
  [RULES.breakerNeedsTrip],
).describe(
  "A circuit breaker per pod and upstream: while open, calls fail fast (or take the fallback). Unset: no breaker.",
);

export const StaticResponse = z
  .strictObject({
    status: httpStatus().default(200).describe("HTTP status of the canned response."),
    headers: boundedMap(32, RULES.headerNames, 4096).optional().describe("Response headers. Unset: none."),
    body: z.string().max(65_536).default("").describe("Response body (at most 64 KiB)."),
  })
  .describe("Answer with a canned response. HTTP only.");

export const FallbackUpstream = z
  .strictObject({
    host: host().describe("Host of the alternate upstream (DNS name or IP)."),
    port: port().describe("Port of the alternate upstream."),
  })
  .describe("Send the call (for tcp: the connection) to an alternate upstream, e.g. a replica.");

export const CacheFallback = z
  .strictObject({
    ttl: longDuration()
      .default("30s")
      .describe("How long a good response may be served stale after it was stored (duration, 1s–24h)."),
    maxEntries: z.int().min(1).max(100_000).default(1000).describe("Responses kept per pod and upstream."),
  })
  .describe("Serve the last good response for the same request (GET only), stale. HTTP only.");

export const Fallback = withRules(
  z.strictObject({
    on: z
      .array(z.enum(FALLBACK_ON))
      .min(1)
      .max(FALLBACK_ON.length)
      .default([...FALLBACK_ON])
      .meta({ "x-kubernetes-list-type": "set" })
      .describe(
        "Failures that take the fallback: circuit-open, bulkhead-full, rate-limited, timeout, " +
          "upstream-error (the call failed after its retries).",
      ),
    static: StaticResponse.optional(),
    upstream: FallbackUpstream.optional(),
    cache: CacheFallback.optional(),
  }),
  [RULES.fallbackExactlyOne],
).describe(
  "What to answer instead of an error; exactly one of static, upstream, cache. Unset: the error is returned.",
);

export const Fault = z
  .strictObject({
    abort: z
      .strictObject({
        percent: percent().describe(
          "Percentage of calls answered with `status` without calling the upstream.",
        ),
        status: httpStatus().default(503).describe("HTTP status of the injected failure."),
      })
      .optional()
      .describe("Fail a share of calls. Unset: none."),
    delay: z
      .strictObject({
        percent: percent().describe("Percentage of calls delayed."),
        duration: duration().describe("Delay added before the call (duration)."),
      })
      .optional()
      .describe("Delay a share of calls. Unset: none."),
  })
  .describe("Fault injection, to test this policy on live traffic. HTTP only. Off unless set.");

export const TcpHealthCheck = withRules(
  z.strictObject({
    interval: duration().default("1s").describe("Time between probes while the breaker is open (duration)."),
    timeout: duration()
      .default("500ms")
      .describe("Timeout of one probe's connect (duration); must be <= interval."),
    healthyThreshold: z
      .int()
      .min(1)
      .max(100)
      .default(1)
      .describe(
        "Consecutive successful probes, after a failed one, that move the open breaker to half-open at once.",
      ),
  }),
  [RULES.tcpHealthTimeoutLteInterval],
).describe(
  "A TCP connect probe of host:port while the circuit breaker is open, feeding its half-open decision. " +
    "A probe that fails keeps the breaker open past its open duration, until a probe connects; once a probe " +
    "has failed, healthyThreshold successful probes in a row move it to half-open at once, so trial " +
    "connections start within one interval of the upstream's return. A probe that connects without having " +
    "seen the upstream down changes nothing (it cannot tell more than the failures that opened the breaker). " +
    "A closed breaker's upstream is never probed. tcp only; needs circuitBreaker. Unset: no probe.",
);

const UpstreamFields = withRules(
  z.strictObject({
    name: dnsLabel().describe(
      "The upstream's name, unique in the policy; the `upstream` label in metrics and status.",
    ),
    protocol: z
      .enum(["http", "tcp"])
      .default("http")
      .describe("http: requests through the agent's outbound listener; tcp: connections through listenPort."),
    host: host().describe("Where the upstream lives: a DNS name (payments.shop.svc.cluster.local) or an IP."),
    port: port().describe("The upstream's port."),
    listenPort: port()
      .optional()
      .describe("tcp only, required there: the local port the app connects to instead of host:port."),
    connectTimeout: duration()
      .default("1s")
      .describe("Timeout of each TCP connect to the upstream (duration)."),
    timeout: duration()
      .optional()
      .describe(
        "Timeout of the whole call, retries and backoff included (duration). HTTP only. " +
          `Default (http): ${HTTP_UPSTREAM_DEFAULTS.timeout}.`,
      ),
    retry: Retry.optional(),
    circuitBreaker: CircuitBreaker.optional(),
    bulkhead: Bulkhead.optional().describe("Concurrency cap for calls (tcp: connections). Unset: none."),
    rateLimit: RateLimit.optional().describe("Rate limit of calls. HTTP only. Unset: none."),
    fallback: Fallback.optional(),
    fault: Fault.optional(),
    healthCheck: TcpHealthCheck.optional(),
  }),
  [
    RULES.perTryTimeoutLteTimeout,
    RULES.slowCallLtTimeout,
    RULES.tcpNeedsListenPort,
    RULES.listenPortOnlyTcp,
    RULES.healthCheckOnlyTcp,
    RULES.healthCheckNeedsBreaker,
    ...HTTP_ONLY_FIELDS.map((f) => RULES.tcpForbids[f]),
  ],
);

/** Fills the defaults that depend on the protocol (see defaults.ts); a no-op for tcp upstreams. */
function withProtocolDefaults<U extends z.output<typeof UpstreamFields>>(u: U): U {
  if (u.protocol !== "http") return u;
  const d = HTTP_UPSTREAM_DEFAULTS;
  return {
    ...u,
    timeout: u.timeout ?? d.timeout,
    ...(u.retry === undefined
      ? {}
      : {
          retry: {
            ...u.retry,
            retryOn: u.retry.retryOn ?? [...d.retryOn],
            retryNonIdempotent: u.retry.retryNonIdempotent ?? d.retryNonIdempotent,
            honorRetryAfter: u.retry.honorRetryAfter ?? d.honorRetryAfter,
          },
        }),
  };
}

export const Upstream = UpstreamFields.transform(withProtocolDefaults).describe(
  "One upstream the selected pods call, and the rules for calling it.",
);

export type Backoff = z.infer<typeof Backoff>;
export type RetryBudget = z.infer<typeof RetryBudget>;
export type Retry = z.infer<typeof Retry>;
export type SlidingWindow = z.infer<typeof SlidingWindow>;
export type FailureRate = z.infer<typeof FailureRate>;
export type SlowCall = z.infer<typeof SlowCall>;
export type OpenDuration = z.infer<typeof OpenDuration>;
export type CircuitBreaker = z.infer<typeof CircuitBreaker>;
export type StaticResponse = z.infer<typeof StaticResponse>;
export type FallbackUpstream = z.infer<typeof FallbackUpstream>;
export type CacheFallback = z.infer<typeof CacheFallback>;
export type Fallback = z.infer<typeof Fallback>;
export type Fault = z.infer<typeof Fault>;
export type TcpHealthCheck = z.infer<typeof TcpHealthCheck>;
export type Upstream = z.infer<typeof Upstream>;
export type RetryOn = (typeof RETRY_ON)[number];
export type Jitter = (typeof JITTER)[number];
export type FallbackOn = (typeof FALLBACK_ON)[number];
