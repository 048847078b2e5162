// Kubernetes CEL extension functions that @marcbachmann/cel-js lacks, registered through its custom-function
// API. Covered: strings (charAt, replace, upper/lowerAscii already built in), lists (isSorted, sum, min, max,
// indexOf, lastIndexOf), regex (find, findAll), URLs (url, isURL and the getters), quantity (isQuantity,
// quantity, comparisons, asInteger, asApproximateFloat, sign, add/sub), and identity conversions.
// Not covered (cel-js cannot register namespaced functions): sets.*, format.*, math.*, strings.quote; and
// ip()/cidr(), authorizer: rules using them fail validateCrd with "found no matching overload".
import type { Environment } from "@marcbachmann/cel-js";
import { Duration } from "@marcbachmann/cel-js/evaluator";

type Handler = (...args: never[]) => unknown;

function reg(env: Environment, signature: string, handler: Handler): void {
  env.registerFunction(signature, handler as (...args: unknown[]) => unknown);
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === "string" && typeof b === "string") return a < b ? -1 : a > b ? 1 : 0;
  const x = typeof a === "bigint" || typeof a === "number" ? a : Number(a);
  const y = typeof b === "bigint" || typeof b === "number" ? b : Number(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function celError(message: string): Error {
  return new Error(message);
}

/** A parsed URL, the value of CEL's `url(string)`. */
export class KubeUrl {
  constructor(readonly url: URL) {}
}

/** A Kubernetes resource quantity (`100m`, `1Gi`, `1e3`), held as a JS number (approximate above 2^53). */
export class KubeQuantity {
  constructor(readonly value: number) {}
}

const QUANTITY = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const MULTIPLIERS: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

export function parseQuantity(s: string): KubeQuantity | undefined {
  const m = QUANTITY.exec(s);
  if (!m) return undefined;
  const suffix = m[2] ?? "";
  const mult = /^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : MULTIPLIERS[suffix];
  return mult === undefined ? undefined : new KubeQuantity(Number(m[1]) * mult);
}

function listOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function registerKubernetesLibrary(env: Environment): void {
  // Identity conversions the CEL spec has and cel-js lacks (values of format duration/date-time arrive typed).
  reg(env, "duration(google.protobuf.Duration): google.protobuf.Duration", (d: Duration) => d);
  reg(env, "timestamp(google.protobuf.Timestamp): google.protobuf.Timestamp", (t: Date) => t);

  // strings library
  reg(env, "string.charAt(int): string", (s: string, i: bigint) => {
    const chars = [...s];
    if (i < 0n || i > BigInt(chars.length)) throw celError(`index out of range: ${i}`);
    return chars[Number(i)] ?? "";
  });
  reg(env, "string.replace(string, string): string", (s: string, a: string, b: string) => s.split(a).join(b));
  reg(env, "string.replace(string, string, int): string", (s: string, a: string, b: string, n: bigint) => {
    if (n < 0n) return s.split(a).join(b);
    let out = s;
    let from = 0;
    for (let k = 0n; k < n; k++) {
      const at = out.indexOf(a, from);
      if (at < 0) break;
      out = out.slice(0, at) + b + out.slice(at + a.length);
      from = at + b.length;
    }
    return out;
  });

  // lists library
  reg(env, "list.isSorted(): bool", (l: unknown[]) =>
    listOf(l).every((x, i, a) => i === 0 || cmp(a[i - 1], x) <= 0),
  );
  reg(env, "list.sum(): dyn", (l: unknown[]) => {
    const a = listOf(l);
    if (a.length === 0) return 0n;
    return a.reduce((x, y) => ((x as number) + (y as number)) as unknown);
  });
  reg(env, "list.min(): dyn", (l: unknown[]) => {
    const a = listOf(l);
    if (a.length === 0) throw celError("min called on empty list");
    return a.reduce((x, y) => (cmp(y, x) < 0 ? y : x));
  });
  reg(env, "list.max(): dyn", (l: unknown[]) => {
    const a = listOf(l);
    if (a.length === 0) throw celError("max called on empty list");
    return a.reduce((x, y) => (cmp(y, x) > 0 ? y : x));
  });
  reg(env, "list.indexOf(dyn): int", (l: unknown[], v: unknown) =>
    BigInt(listOf(l).findIndex((x) => cmp(x, v) === 0 && typeof x === typeof v)),
  );
  reg(env, "list.lastIndexOf(dyn): int", (l: unknown[], v: unknown) => {
    const a = listOf(l);
    for (let i = a.length - 1; i >= 0; i--)
      if (typeof a[i] === typeof v && cmp(a[i], v) === 0) return BigInt(i);
    return -1n;
  });

  // regex library
  reg(env, "string.find(string): string", (s: string, re: string) => new RegExp(re, "u").exec(s)?.[0] ?? "");
  reg(env, "string.findAll(string): list<string>", (s: string, re: string) =>
    [...s.matchAll(new RegExp(re, "gu"))].map((m) => m[0]),
  );
  reg(env, "string.findAll(string, int): list<string>", (s: string, re: string, n: bigint) => {
    const all = [...s.matchAll(new RegExp(re, "gu"))].map((m) => m[0]);
    return n < 0n ? all : all.slice(0, Number(n));
  });

  // URL library
  env.registerType("net.URL", KubeUrl);
  reg(env, "isURL(string): bool", (s: string) => URL.canParse(s) && /^[a-zA-Z][\w+.-]*:/.test(s));
  reg(env, "url(string): net.URL", (s: string) => {
    if (!URL.canParse(s)) throw celError(`URL parse error during conversion from string: ${s}`);
    return new KubeUrl(new URL(s));
  });
  reg(env, "net.URL.getScheme(): string", (u: KubeUrl) => u.url.protocol.replace(/:$/, ""));
  reg(env, "net.URL.getHost(): string", (u: KubeUrl) => u.url.host);
  reg(env, "net.URL.getHostname(): string", (u: KubeUrl) => u.url.hostname.replace(/^\[(.*)\]$/, "$1"));
  reg(env, "net.URL.getPort(): string", (u: KubeUrl) => u.url.port);
  reg(env, "net.URL.getEscapedPath(): string", (u: KubeUrl) => u.url.pathname);

  // quantity library
  env.registerType("k8s.Quantity", KubeQuantity);
  reg(env, "isQuantity(string): bool", (s: string) => parseQuantity(s) !== undefined);
  reg(env, "quantity(string): k8s.Quantity", (s: string) => {
    const q = parseQuantity(s);
    if (!q) throw celError(`quantities must match the regular expression: ${s}`);
    return q;
  });
  reg(env, "k8s.Quantity.compareTo(k8s.Quantity): int", (a: KubeQuantity, b: KubeQuantity) =>
    BigInt(cmp(a.value, b.value)),
  );
  reg(
    env,
    "k8s.Quantity.isGreaterThan(k8s.Quantity): bool",
    (a: KubeQuantity, b: KubeQuantity) => a.value > b.value,
  );
  reg(
    env,
    "k8s.Quantity.isLessThan(k8s.Quantity): bool",
    (a: KubeQuantity, b: KubeQuantity) => a.value < b.value,
  );
  reg(env, "k8s.Quantity.sign(): int", (a: KubeQuantity) => BigInt(Math.sign(a.value)));
  reg(env, "k8s.Quantity.asApproximateFloat(): double", (a: KubeQuantity) => a.value);
  reg(env, "k8s.Quantity.isInteger(): bool", (a: KubeQuantity) => Number.isInteger(a.value));
  reg(env, "k8s.Quantity.asInteger(): int", (a: KubeQuantity) => {
    if (!Number.isInteger(a.value)) throw celError("cannot convert value to integer");
    return BigInt(a.value);
  });
  reg(
    env,
    "k8s.Quantity.add(k8s.Quantity): k8s.Quantity",
    (a: KubeQuantity, b: KubeQuantity) => new KubeQuantity(a.value + b.value),
  );
  reg(
    env,
    "k8s.Quantity.sub(k8s.Quantity): k8s.Quantity",
    (a: KubeQuantity, b: KubeQuantity) => new KubeQuantity(a.value - b.value),
  );
}

/** Builds a CEL duration from a Go-style duration string (`1h30m`, `250ms`); undefined when malformed. */
export function parseGoDuration(s: string): Duration | undefined {
  const m = /^([-+]?)(.*)$/.exec(s.trim());
  if (!m) return undefined;
  const body = m[2] ?? "";
  if (body === "0") return new Duration(0n, 0);
  const units: Record<string, number> = {
    ns: 1e-6,
    us: 1e-3,
    µs: 1e-3,
    μs: 1e-3,
    ms: 1,
    s: 1e3,
    m: 6e4,
    h: 3.6e6,
  };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/gy;
  let ms = 0;
  let consumed = 0;
  for (const part of body.matchAll(re)) {
    ms += Number(part[1]) * (units[part[2] ?? ""] ?? 0);
    consumed += part[0].length;
  }
  if (consumed === 0 || consumed !== body.length) return undefined;
  return Duration.fromMilliseconds(m[1] === "-" ? -ms : ms);
}
