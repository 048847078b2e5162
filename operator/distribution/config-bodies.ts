// Serialised configs, one copy per distinct config rather than one per pod. The compiler versions a config by
// the hash of its rules (operator/compiler/compile-pod.ts), so every pod that the same policies select gets
// the same version and, apart from its `pod` field, the same document, built from the same memoised rule
// objects. Serialising that shared part once and keeping one buffer of it makes the operator's memory per
// pod a few dozen bytes instead of a copy of the config, and a push's cost independent of how many pods share
// it. A push is two writes: the shared part, already framed as the start of a push message, then a small
// per-push tail with the pod field, the version and the nonce (JSON objects are unordered: the agent validates
// the document with zod and never sees a difference). The per-push bytes are a few dozen, not a copy of the
// config: at 10,000 agents a change otherwise allocates 20 MB of frames, and the collector runs for them.
//
// A version is only a claim about content, so a config whose version is already known is checked before it
// shares a body: the same rule objects (what the compiler hands over) pass at the cost of a few pointer
// comparisons; anything else is serialised and compared byte for byte, and a config that differs from the
// known one under the same version gets a private body instead of corrupting the shared one.
import type { SidecarConfig } from "../api/sidecar-config.js";

/** A serialised config without its `pod` field, shared by every pod holding it. */
export interface SharedBody {
  readonly version: string;
  /** `{"type":"config","config":{<the config's fields but pod>,"pod":` — a push message up to the pod. */
  readonly head: Buffer;
  /** The config's fields but pod, as JSON without the braces ("" when there are none). */
  readonly fields: string;
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
    const fields = JSON.stringify(sample).slice(1, -1);
    if (known !== undefined && known.fields === fields) {
      known.refs++;
      return known;
    }
    const text = `${PUSH_START}${fields}${fields === "" ? "" : ","}"pod":`;
    // Long-lived: its own allocation, not a slice of Buffer's shared pool (one live slice pins a whole 8 KiB slab).
    const size = Buffer.byteLength(text);
    const head = Buffer.allocUnsafeSlow(size);
    head.write(text, 0, size, "utf8");
    const body: SharedBody = {
      version: config.version,
      head,
      fields,
      sample,
      refs: 1,
      shared: known === undefined,
    };
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

const PUSH_START = '{"type":"config","config":{';

/**
 * One config push as the two buffers to write one after the other: the shared head, then this push's tail
 * (`<pod>},"version":…,"nonce":…}` and the newline). The whole is one JSON line.
 */
export function pushParts(version: string, nonce: string, pod: string, body: SharedBody): [Buffer, Buffer] {
  const tail = `},"version":${JSON.stringify(version)},"nonce":${JSON.stringify(nonce)}}\n`;
  if (pod !== "") return [body.head, Buffer.from(`${pod}${tail}`)];
  // A config without a pod field (never from the compiler): its own head, without `"pod":`.
  return [Buffer.from(`${PUSH_START}${body.fields}`), Buffer.from(tail)];
}

/** The `pod` field's JSON for pushParts, kept per pod ("" when the config has none). */
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
