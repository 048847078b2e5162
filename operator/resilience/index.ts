/**
 * Bulwark's resilience primitives: pure, synchronous decision cores the agent calls on every request.
 * No sockets, timers or globals; time is passed in as `now` (ms from an injected monotonic {@link Clock},
 * read once per request) and randomness as a {@link Random}.
 *
 * Why not cockatiel (v4.0.0, a dependency)? Read in node_modules/cockatiel/dist: every policy is a
 * promise-wrapping executor (`execute(fn)`), with no synchronous admit/record API for a proxy that answers
 * 503 itself; `CircuitBreakerPolicy` and `SamplingBreaker` read `Date.now()` and the jitter generators
 * `Math.random()` directly (nothing to inject, so no deterministic tests); the breakers are consecutive,
 * count- or sampling-based, with no slow-call rule and no built-in combination of rules; half-open sampling
 * (`halfOpenSampling`) makes extra callers await the verdict instead of rejecting them; retry sleeps on a
 * real `setTimeout`; there is no retry budget, no rate limiter (in 4.0.0), no adaptive limit, no priority
 * shedding, and the bulkhead queue has no timeout. What it does have (growing open duration through a
 * `halfOpenAfter` backoff, `toJSON` hydration) we match. The one candidate for reuse, its jitter
 * generators, cannot take an injected random, and its "decorrelated" is Polly's DecorrelatedJitterV2, not
 * the AWS formula the policy names; backoff.ts is 20 lines of our own.
 *
 * Cost (bench/primitives.ts → bench/results/primitives.json; 2-core EPYC VM, Node 20, medians of 5 rounds;
 * every run so far flagged NOISY, load average 8–10 from concurrent work, so read ranges across runs): each
 * sync decision costs ~15–40 ns over a plain call (breaker, bulkhead, token bucket, retry on success; one
 * run put the breaker at 164 ns), and the whole rate-limit → bulkhead → breaker → retry decision 58–90 ns,
 * far under the 1 µs target. Wrapped around an `await` as the peers are, that composition costs 0.12–0.38×
 * cockatiel's `wrap(retry, breaker, bulkhead)` (224 ns vs 597–1,941 ns/op); the breaker alone 0.4–1.1× and
 * the bulkhead 0.7–1.5× cockatiel's, both within a few hundred ns of the await floor, i.e. on par within
 * the noise. cockatiel's per-call `timeout()` cost 26–131 µs, so timeouts belong on one agent-owned
 * deadline list; opossum's failure path re-sorts every latency in its 10 s window (lib/status.js), so its
 * cost grows with traffic.
 */
export { ManualClock, constantRandom, seededRandom, systemClock, systemRandom } from "./clock.js";
export type { Clock, Random } from "./clock.js";

export { DEFAULT_RETRY_AFTER_CAP_MS, backoff, expDelay, nextDelay, parseRetryAfter } from "./backoff.js";
export type { Backoff, BackoffOptions, Jitter } from "./backoff.js";

export { RetryBudget } from "./retry-budget.js";
export type { RetryBudgetOptions } from "./retry-budget.js";

export { decideRetry, isRetryable, retryPolicy } from "./retry.js";
export type {
  AttemptResult,
  NoRetryReason,
  RetryDecision,
  RetryOn,
  RetryPolicy,
  RetryPolicyOptions,
  RetryState,
} from "./retry.js";

export { CountWindow, TimeWindow, createWindow } from "./sliding-window.js";
export type { SlidingWindow, WindowSnapshot, WindowSpec } from "./sliding-window.js";

export { CircuitBreaker } from "./circuit-breaker.js";
export type {
  Admission,
  BreakerState,
  BreakerStateName,
  BreakerTransition,
  CallOutcome,
  CircuitBreakerOptions,
  Permit,
  TransitionReason,
} from "./circuit-breaker.js";

export { Bulkhead } from "./bulkhead.js";
export type { BulkheadDecision, BulkheadOptions, Ticket, TicketOutcome } from "./bulkhead.js";

export { TokenBucket } from "./token-bucket.js";
export type { TakeResult, TokenBucketOptions } from "./token-bucket.js";

export { AimdLimit, Gradient2Limit, VegasLimit, createAdaptiveLimit } from "./adaptive-limit.js";
export type {
  AdaptiveAlgorithm,
  AdaptiveLimit,
  AdaptiveLimitOptions,
  AimdOptions,
  CommonLimitOptions,
  Gradient2Options,
  VegasOptions,
} from "./adaptive-limit.js";

export { LoadShedder } from "./load-shedder.js";
export type { LoadShedderOptions, ShedDecision } from "./load-shedder.js";

export { decideFault, validateFault } from "./fault-injection.js";
export type { FaultDecision, FaultOptions } from "./fault-injection.js";
