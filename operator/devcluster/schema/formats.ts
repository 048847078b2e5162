// The string formats the apiserver checks for CRDs (kube-openapi's strfmt registry); unknown formats pass.

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** Go `time.ParseDuration` syntax, e.g. `1h30m`, `250ms`, `-1.5s`. */
export const GO_DURATION = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$|^[-+]?0$/;

const SCALA_DURATION =
  /^[-+]?\d+(\.\d+)?\s*(ns|nanos?|nanoseconds?|us|µs|micros?|microseconds?|ms|millis?|milliseconds?|s|sec|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)$/;

function isIPv6(s: string): boolean {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || !s.includes(":")) return false;
  const double = s.split("::").length - 1;
  if (double > 1) return false;
  const groups = s.split(":").filter((g) => g !== "");
  return groups.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g) || IPV4.test(g)) && groups.length <= 8;
}

const CHECKS: Record<string, (s: string) => boolean> = {
  "date-time": (s) => RFC3339.test(s) && !Number.isNaN(Date.parse(s.replace(" ", "T"))),
  datetime: (s) => RFC3339.test(s) && !Number.isNaN(Date.parse(s.replace(" ", "T"))),
  date: (s) => DATE.test(s) && !Number.isNaN(Date.parse(s)),
  byte: (s) => BASE64.test(s),
  uuid: (s) => UUID.test(s),
  hostname: (s) => HOSTNAME.test(s),
  ipv4: (s) => IPV4.test(s),
  ipv6: isIPv6,
  // Go time.ParseDuration, or the Scala-style "22 ns" / "3 days" kube-openapi also accepts.
  duration: (s) => GO_DURATION.test(s) || SCALA_DURATION.test(s),
};

/** True when `s` satisfies `format` (or the format is not one the apiserver checks). */
export function matchesFormat(format: string, s: string): boolean {
  const check = CHECKS[format];
  return check ? check(s) : true;
}
