import { describe, expect, it } from "vitest";
import { ManualClock } from "../../operator/controller/clock.js";
import type { ChangeEvent, WatchSourceEvent, WatchSourceOptions } from "../../operator/kube/watch-source.js";
import { WatchSource } from "../../operator/kube/watch-source.js";
import { FakeApi, connReset, gone } from "./fake-api.js";

function setup(opts: Partial<WatchSourceOptions> = {}) {
  const clock = new ManualClock();
  const api = new FakeApi();
  const src = new WatchSource({ transport: api, clock, random: () => 0.5, name: "things", ...opts });
  const changes: string[] = [];
  const events: WatchSourceEvent[] = [];
  src.onChange((e: ChangeEvent) => changes.push(`${e.type} ${e.object.metadata?.name} ${e.origin}`));
  src.onEvent((e) => events.push(e));
  return { clock, api, src, changes, events, kinds: () => events.map((e) => e.type) };
}

describe("WatchSource", () => {
  it("lists, fills the store, then watches from the list's resourceVersion with bookmarks and a jittered timeout", async () => {
    const { clock, api, src, changes, kinds } = setup();
    api.create("a");
    api.create("b");
    src.start();
    await src.waitForSync();
    await clock.advance(0);
    expect(changes).toEqual(["ADDED a list", "ADDED b list"]);
    expect(src.store.get("ns", "a")?.metadata?.uid).toBe("uid-1");
    expect(api.current.req).toEqual({
      resourceVersion: "102",
      timeoutSeconds: 180,
      allowWatchBookmarks: true,
    });
    expect(kinds()).toEqual(["relist", "connect"]);
  });

  it("applies watch events to the store and skips a MODIFIED that carries a version it already has", async () => {
    const { clock, api, src, changes } = setup();
    src.start();
    await clock.advance(0);
    const a = api.create("a");
    api.update("a", { x: 1 });
    api.current.onEvent("MODIFIED", structuredClone(api.objects.get("a")));
    api.remove("a");
    expect(changes).toEqual(["ADDED a watch", "MODIFIED a watch", "DELETED a watch"]);
    expect(src.store.size).toBe(0);
    expect(a.metadata?.uid).toBe("uid-1");
    expect(src.lastResourceVersion).toBe("103");
  });

  it("pages the list with continue tokens", async () => {
    const { clock, api, src } = setup({ pageSize: 2 });
    for (const n of ["a", "b", "c", "d", "e"]) api.create(n);
    src.start();
    await clock.advance(0);
    expect(api.lists.map((l) => l.continueToken)).toEqual([undefined, "2", "4"]);
    expect(src.store.size).toBe(5);
  });

  it("after a disconnect and 410, relists and synthesises DELETED/MODIFIED/ADDED for what changed unseen", async () => {
    const { clock, api, src, changes, events } = setup();
    api.create("keep");
    api.create("vanish");
    api.create("change");
    src.start();
    await clock.advance(5_000);
    changes.length = 0;

    api.close(connReset()); // the connection drops
    api.deliver = false; // changes happen while we are away
    api.remove("vanish");
    api.update("change", { v: 2 });
    api.create("new");
    api.deliver = true;
    api.compactedBelow = api.rv; // and the history we would resume from is compacted

    await clock.advance(60_000);
    expect(changes).toEqual(["DELETED vanish list", "MODIFIED change list", "ADDED new list"]);
    expect(src.store.keys().sort()).toEqual(["ns/change", "ns/keep", "ns/new"]);
    const relists = events.filter((e) => e.type === "relist");
    expect(relists.at(-1)).toMatchObject({ reason: "gone", added: 1, modified: 1, deleted: 1, objects: 3 });
    expect(api.current.req.resourceVersion).toBe(String(api.rv));
  });

  it("relists on an HTTP 410 answer to the watch request too", async () => {
    const { clock, api, src } = setup();
    src.start();
    await clock.advance(2_000);
    api.close(null);
    api.watchErrors.push(gone());
    await clock.advance(5_000);
    expect(api.lists).toHaveLength(2);
    expect(api.open).toHaveLength(1);
  });

  it("restarts a silent watch after the last-seen limit, resuming from the last resourceVersion without a list", async () => {
    const { clock, api, src, kinds } = setup({ lastSeenLimitMs: 60_000, watchdogIntervalMs: 5_000 });
    src.start();
    await clock.advance(0);
    api.create("a");
    const first = api.current;
    api.deliver = false; // half-open connection: nothing arrives, no error
    api.create("b");
    await clock.advance(59_000);
    expect(first.stopped).toBe(false);
    await clock.advance(6_000);
    expect(first.stopped).toBe(true);
    expect(kinds()).toContain("watchdog");
    expect(api.open).toHaveLength(1);
    expect(api.current.req.resourceVersion).toBe("101");
    expect(api.lists).toHaveLength(1);
  });

  it("does not restart a quiet watch that receives bookmarks", async () => {
    const { clock, api, src, kinds } = setup({ lastSeenLimitMs: 60_000 });
    src.start();
    await clock.advance(0);
    const w = api.current;
    for (let i = 0; i < 10; i++) {
      api.rv++;
      api.bookmark();
      await clock.advance(30_000);
    }
    expect(w.stopped).toBe(false);
    expect(kinds()).not.toContain("watchdog");
    expect(src.lastResourceVersion).toBe(String(api.rv));
  });

  it("relists periodically and catches a change the watch lost", async () => {
    const { clock, api, src, changes } = setup({ relistIntervalMs: 600_000 });
    api.create("a");
    src.start();
    await clock.advance(0);
    api.deliver = false;
    api.update("a", { lost: true });
    api.deliver = true;
    await clock.advance(600_000 * 1.05 + 1);
    expect(changes).toEqual(["ADDED a list", "MODIFIED a list"]);
    expect(api.lists).toHaveLength(2);
    expect(api.open).toHaveLength(1);
  });

  it("on a clean close of a healthy watch, watches again at once from the last resourceVersion", async () => {
    const { clock, api, src, events } = setup();
    src.start();
    await clock.advance(200_000);
    api.create("a");
    api.close(null);
    await clock.advance(0);
    expect(api.open).toHaveLength(1);
    expect(api.current.req.resourceVersion).toBe("101");
    expect(events.find((e) => e.type === "reconnect")).toMatchObject({ reason: "closed", delayMs: 0 });
  });

  it("backs off with jitter, capped, when the server accepts and drops at once (no storm)", async () => {
    const { clock, api, src } = setup({ maxConsecutiveFailures: 0 });
    src.start();
    await clock.advance(0);
    const starts: number[] = [];
    for (let i = 0; i < 12; i++) {
      starts.push(clock.now());
      api.close(null); // dropped immediately after connecting
      while (api.open.length === 0) await clock.advance(50);
    }
    const gaps = starts.slice(1).map((t, i) => t - (starts[i] as number));
    // equal jitter with random 0.5 → 0.75 × 500 ms × 2^n, capped at 0.75 × 30 s
    expect(gaps.slice(0, 5)).toEqual([400, 750, 1500, 3000, 6000]);
    expect(Math.max(...gaps)).toBe(22_500);
  });

  it("backs off on list errors and gives up after maxConsecutiveFailures, rejecting waitForSync", async () => {
    const { clock, api, src, events } = setup({ maxConsecutiveFailures: 4 });
    api.listErrors = [connReset(), connReset(), connReset(), connReset()];
    src.start();
    const sync = src.waitForSync().then(
      () => "synced",
      (e: Error) => e.message,
    );
    await clock.advance(60_000);
    expect(await sync).toMatch(/gave up after 4 failures/);
    expect(
      events.filter((e) => e.type === "reconnect").map((e) => (e as { delayMs: number }).delayMs),
    ).toEqual([375, 750, 1500]);
    expect(events.at(-1)).toMatchObject({ type: "give-up", failures: 4 });
    expect(api.lists).toHaveLength(4);
    await clock.advance(600_000);
    expect(api.lists).toHaveLength(4);
  });

  it("recovers after transient list errors and resets the failure count", async () => {
    const { clock, api, src } = setup({ maxConsecutiveFailures: 3 });
    api.listErrors = [connReset(), connReset()];
    src.start();
    await clock.advance(10_000);
    expect(src.hasSynced).toBe(true);
    api.listErrors = [connReset(), connReset()];
    api.close(gone());
    await clock.advance(10_000);
    expect(api.open).toHaveLength(1);
  });

  it("sees a re-created object (same name, new uid) as DELETED then ADDED", async () => {
    const { clock, api, src, changes } = setup();
    api.create("a");
    src.start();
    await clock.advance(5_000);
    api.deliver = false;
    api.remove("a");
    api.create("a");
    api.deliver = true;
    api.compactedBelow = api.rv;
    api.close(connReset());
    await clock.advance(10_000);
    expect(changes).toEqual(["ADDED a list", "DELETED a list", "ADDED a list"]);
    expect(src.store.get("ns", "a")?.metadata?.uid).toBe("uid-2");
  });

  it("keeps watching when a subscriber throws, and replays the cache to a late subscriber", async () => {
    const { clock, api, src, events } = setup();
    src.onChange(() => {
      throw new Error("subscriber bug");
    });
    api.create("a");
    src.start();
    await clock.advance(0);
    api.create("b");
    expect(src.store.size).toBe(2);
    expect(events.filter((e) => e.type === "error" && e.phase === "handler")).toHaveLength(2);
    const late: string[] = [];
    src.onChange((e) => late.push(`${e.type} ${e.object.metadata?.name}`), { replay: true });
    expect(late.sort()).toEqual(["ADDED a", "ADDED b"]);
  });

  it("stop ends the watch and all timers", async () => {
    const { clock, api, src } = setup();
    src.start();
    await clock.advance(0);
    src.stop();
    expect(api.open).toHaveLength(0);
    await clock.advance(3_600_000);
    expect(api.watches).toHaveLength(1);
    expect(clock.pending()).toBe(0);
  });
});
