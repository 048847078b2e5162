// Durations in the Go/Kubernetes string form (`250ms`, `5s`, `1m30s`), as the contract fixes them.
// The pattern is shared with the CRD so `kubectl apply` and `bulwark compile` accept the same strings, and it is
// a strict subset of what Kubernetes CEL's `duration()` parses, so the CRD's CEL rules can compare durations.

/** Units accepted in a duration string, with their length in milliseconds. */
const UNIT_MS = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 } as const;

/**
 * One or more `<number><unit>` terms, unit one of `h`, `m`, `s`, `ms`; decimals allowed (`1.5s`).
 * No sign, no bare `0`, no `us`/`ns` (below what a resilience policy can act on).
 */
export const DURATION_PATTERN = "^([0-9]+(\\.[0-9]+)?(ms|h|m|s))+$";
const DURATION_RE = new RegExp(DURATION_PATTERN);
const TERM_RE = /([0-9]+(?:\.[0-9]+)?)(ms|h|m|s)/g;

/** Longest duration string the schema accepts (bounds CEL cost in the CRD). */
export const DURATION_MAX_LENGTH = 16;

/** True when `s` is a duration string in the accepted form. */
export function isDuration(s: string): boolean {
  return s.length <= DURATION_MAX_LENGTH && DURATION_RE.test(s);
}

/** Parses a duration string (`250ms`, `5s`, `1m30s`, `1.5s`) into milliseconds; throws on anything else. */
export function parseDuration(s: string): number {
  if (!isDuration(s)) {
    throw new RangeError(
      `invalid duration ${JSON.stringify(s)}: want a number and unit, e.g. 250ms, 5s, 1m30s`,
    );
  }
  let ms = 0;
  for (const match of s.matchAll(TERM_RE)) {
    const [, value, unit] = match;
    ms += Number(value) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  return ms;
}

/** Formats milliseconds as the shortest duration string of whole units (`1500` → `1s500ms`, `90000` → `1m30s`). */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot format ${ms} ms as a duration`);
  let rest = Math.round(ms);
  if (rest === 0) return "0s";
  let out = "";
  for (const [unit, size] of Object.entries(UNIT_MS)) {
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
