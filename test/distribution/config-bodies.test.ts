// Serialised configs shared between pods: what goes on the wire is each pod's own whole config, however
// many pods share the body, and a config that only claims another's version never gets its rules.
import { describe, expect, it } from "vitest";
import type { SidecarConfig } from "../../operator/api/sidecar-config.js";
import { ConfigBodies, podJson, pushParts } from "../../operator/distribution/config-bodies.js";
import { config } from "./helpers.js";

function decode(parts: Buffer[]): unknown {
  const frame = Buffer.concat(parts);
  expect(frame.at(-1)).toBe(0x0a);
  expect(frame.subarray(0, -1).includes(0x0a)).toBe(false);
  return JSON.parse(frame.toString("utf8"));
}

/** What the compiler hands over: each pod its own object, the rules shared. */
function sharing(base: SidecarConfig, pod: string): SidecarConfig {
  const [namespace = "", name = ""] = pod.split("/");
  return { ...base, pod: { namespace, name }, upstreams: [...base.upstreams] };
}

describe("config bodies", () => {
  it("pods with the same config share one body; each push still carries the pod's own whole config", () => {
    const bodies = new ConfigBodies();
    const base = config("shop/a", "v1");
    const pods = ["shop/a", "shop/b", "shop/c"];
    const held = pods.map((p) => {
      const cfg = sharing(base, p);
      const body = bodies.acquire(cfg);
      const push = decode(pushParts(cfg.version, `n-${p}`, podJson(cfg), body));
      expect(push).toEqual({ type: "config", version: "v1", nonce: `n-${p}`, config: cfg });
      return body;
    });
    expect(new Set(held).size).toBe(1);
    expect(bodies.size).toBe(1);
    // Built separately (not the compiler's shared objects) but equal: shared all the same.
    expect(bodies.acquire(config("shop/d", "v1"))).toBe(held[0]);
    for (const b of [...held, held[0]!]) bodies.release(b);
    expect(bodies.size).toBe(0);
  });

  it("a config under a known version but with other rules gets its own body, and its own rules on the wire", () => {
    const bodies = new ConfigBodies();
    const shop = config("shop/a", "v1");
    const other = {
      ...config("other/x", "v1"),
      upstreams: [{ ...config("other/x", "v1").upstreams[0]!, host: "é.example" }],
    };
    const a = bodies.acquire(shop);
    const b = bodies.acquire(other as SidecarConfig);
    expect(b).not.toBe(a);
    expect(bodies.size).toBe(2);
    expect(decode(pushParts("v1", "n", podJson(other as SidecarConfig), b))).toMatchObject({ config: other });
    expect(decode(pushParts("v1", "n", podJson(shop), a))).toMatchObject({ config: shop });
    bodies.release(b);
    bodies.release(a);
    expect(bodies.size).toBe(0);
  });
});
