// Serialised configs, one copy per distinct config rather than one per pod. The compiler versions a config by
// the hash of its rules (operator/compiler/compile-pod.ts), so every pod that the same policies select gets
// the same version and, apart from its `pod` field, the same document, built from the same memoised rule
// objects. Serialising that shared part once and keeping one buffer of it makes the operator's memory per
// pod a few dozen bytes instead of a copy of the config, and a push's cost independent of how many pods share
// it. The pod field is written per push, in front of the shared part (JSON objects are unordered: the agent
// validates the document with zod and never sees a difference).
//
// A version is only a claim about content, so a config whose version is already known is checked before it
// shares a body: the same rule objects (what the compiler hands over) pass at the cost of a few pointer
// comparisons; anything else is serialised and compared byte for byte, and a config that differs from the
// known one under the same version gets a private body instead of corrupting the shared one.
import type { SidecarConfig } from "../api/sidecar-config.js";

/** A serialised config without its `pod` field, shared by every pod holding it. */
export interface SharedBody {
  readonly version: string;
  /** The config's JSON minus `pod`, without its opening brace: `"apiVersion":…}` (or `}` when empty). */
  readonly rest: Buffer;
  /** What the body was made from, minus `pod`: its rule objects are what later configs are compared with. */
  readonly sample: Readonly<Record<string, unknown>>;
  /** Pods holding it; the body is forgotten at zero. */
  refs: number;
  /** False for a body that could not be shared (same version as a known one, other content). */
  readonly shared: boolean;
}

export class ConfigBodies {
  private readonly byVersion = new Map<string, SharedBody>();
  private unshared = 0;

  /** Bodies kept: one per distinct config in use. */
  get size(): number {
    return this.byVersion.size + this.unshared;
  }

  /** The body for `config`, shared with the pods holding the same one; release it when the pod lets go. */
  acquire(config: SidecarConfig): SharedBody {
    const known = this.byVersion.get(config.version);
    if (known !== undefined && sameParts(known.sample, config)) {
      known.refs++;
      return known;
    }
    const { pod: _pod, ...sample } = config as SidecarConfig & Record<string, unknown>;
    const json = JSON.stringify(sample);
    // Long-lived: its own allocation, not a slice of Buffer's shared pool (one live slice pins a whole 8 KiB slab).
    const size = Buffer.byteLength(json) - 1;
    const rest = Buffer.allocUnsafeSlow(size);
    rest.write(json.slice(1), 0, size, "utf8");
    if (known !== undefined && known.rest.equals(rest)) {
      known.refs++;
      return known;
    }
    const body: SharedBody = { version: config.version, rest, sample, refs: 1, shared: known === undefined };
    if (body.shared) this.byVersion.set(config.version, body);
    else this.unshared++;
    return body;
  }

  release(body: SharedBody): void {
    if (--body.refs !== 0) return;
    if (!body.shared) this.unshared--;
    else if (this.byVersion.get(body.version) === body) this.byVersion.delete(body.version);
  }
}

/**
 * The JSON text of one config push: `{"type":"config","version":…,"nonce":…,"config":{"pod":…,<rest>}`
 * and a newline, in one buffer (one write; copying a few KB costs less than a writev of several chunks).
 */
export function pushFrame(version: string, nonce: string, pod: string, body: SharedBody): Buffer {
  const empty = body.rest.length === 1; // `}`: the config had nothing but its pod
  const head =
    `{"type":"config","version":${JSON.stringify(version)},"nonce":${JSON.stringify(nonce)},"config":{` +
    (pod === "" ? "" : `"pod":${pod}${empty ? "" : ","}`);
  const headBytes = Buffer.byteLength(head);
  const frame = Buffer.allocUnsafe(headBytes + body.rest.length + 2);
  frame.write(head, 0, headBytes, "utf8");
  body.rest.copy(frame, headBytes);
  frame[frame.length - 2] = 0x7d; // }
  frame[frame.length - 1] = 0x0a; // \n
  return frame;
}

/** The `pod` field's JSON for pushFrame, kept per pod ("" when the config has none). */
export function podJson(config: SidecarConfig): string {
  return config.pod === undefined ? "" : JSON.stringify(config.pod);
}

/** Same own fields apart from `pod`, each the same value or an array of the same elements. */
function sameParts(sample: Readonly<Record<string, unknown>>, config: SidecarConfig): boolean {
  // for…in rather than Object.entries: this runs once per push, and allocates nothing this way.
  const c = config as unknown as Readonly<Record<string, unknown>>;
  let n = 0;
  for (const k in c) {
    if (k === "pod" || !Object.hasOwn(c, k)) continue;
    n++;
    const v = c[k];
    const s = sample[k];
    if (s === v) continue;
    if (!Array.isArray(s) || !Array.isArray(v) || s.length !== v.length) return false;
    for (let i = 0; i < s.length; i++) if (s[i] !== v[i]) return false;
  }
  let m = 0;
  for (const k in sample) if (Object.hasOwn(sample, k)) m++;
  return n === m;
}
