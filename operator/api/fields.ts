// Field builders shared by the ResiliencePolicy schema: durations, percentages, ports, hosts, names.
// Each carries the bounds the CRD needs (maxLength, minimum/maximum) so the API server's CEL cost estimate
// stays small and every value has a limit.
import { z } from "zod";
import { DURATION_MAX_LENGTH, DURATION_PATTERN } from "./duration.js";
import { RULES, withRules, type Rule } from "./rules.js";

/** A duration string (`250ms`, `5s`, `1m30s`) between 1ms and 1h. */
export function duration() {
  return withRules(z.string().max(DURATION_MAX_LENGTH).regex(new RegExp(DURATION_PATTERN)), [
    RULES.durationUpTo1h,
  ]);
}

/** A duration string between 1s and 24h (cache lifetimes). */
export function longDuration() {
  return withRules(z.string().max(DURATION_MAX_LENGTH).regex(new RegExp(DURATION_PATTERN)), [
    RULES.durationUpTo24h,
  ]);
}

/** An integer percentage, 0–100. */
export function percent() {
  return z.int().min(0).max(100);
}

/** A TCP port, 1–65535. */
export function port() {
  return z.int().min(1).max(65535);
}

/** A DNS name or IP address (`payments.shop.svc.cluster.local`, `10.0.0.7`). */
export function host() {
  return z
    .string()
    .min(1)
    .max(253)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
}

/** A DNS-1123 label: lower-case alphanumerics and '-', at most 63 characters. */
export function dnsLabel() {
  return z
    .string()
    .min(1)
    .max(63)
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
}

/** An HTTP status code, 100–599. */
export function httpStatus() {
  return z.int().min(100).max(599);
}

/** A string → string map with at most `max` entries, values bounded, keys bounded by `keyRule`. */
export function boundedMap(max: number, keyRule: Rule<Record<string, string>>, valueMaxLength: number) {
  return withRules(z.record(z.string(), z.string().max(valueMaxLength)), [keyRule])
    .refine((m) => Object.keys(m).length <= max, { message: `must have at most ${max} entries` })
    .meta({ maxProperties: max });
}
