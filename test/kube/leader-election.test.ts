import { describe, expect, it } from "vitest";
import { ManualClock } from "../../operator/controller/clock.js";
import type { StopReason } from "../../operator/kube/leader-election.js";
import { LeaderElector, microTime } from "../../operator/kube/leader-election.js";
import { FakeLeaseStore } from "./fake-lease-client.js";

interface Replica {
  id: string;
  elector: LeaderElector;
  client: ReturnType<FakeLeaseStore["client"]>;
  leading: boolean;
  log: string[];
}

function cluster(ids: string[], random = () => 0.5) {
  const clock = new ManualClock();
  const store = new FakeLeaseStore();
  const replicas: Replica[] = ids.map((id) => {
    const client = store.client();
    const r: Replica = {
      id,
      client,
      leading: false,
      log: [],
      elector: undefined as unknown as LeaderElector,
    };
    r.elector = new LeaderElector({
      client,
      namespace: "bulwark-system",
      name: "bulwark-operator",
      identity: id,
      clock,
      random,
      onStartedLeading: () => {
        r.leading = true;
        r.log.push(`start@${clock.now()}`);
      },
      onStoppedLeading: (why: StopReason) => {
        r.leading = false;
        r.log.push(`stop:${why}@${clock.now()}`);
      },
    });
    return r;
  });
  const leaders = () => replicas.filter((r) => r.leading).map((r) => r.id);
  /** Advances in 100 ms steps, asserting there is never more than one leader. */
  const run = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      await clock.advance(100);
      expect(leaders().length).toBeLessThanOrEqual(1);
    }
  };
  return { clock, store, replicas, leaders, run };
}

describe("LeaderElector", () => {
  it("creates the Lease and leads at once when none exists, renewing every retry period", async () => {
    const { store, replicas, run, clock } = cluster(["a"]);
    const t0 = clock.now();
    void replicas[0]!.elector.run();
    await run(100);
    expect(replicas[0]!.leading).toBe(true);
    expect(store.lease?.spec).toMatchObject({
      holderIdentity: "a",
      leaseDurationSeconds: 15,
      leaseTransitions: 0,
    });
    expect(store.lease?.spec?.acquireTime).toBe(microTime(t0));
    await run(10_000);
    expect(store.lease?.spec?.renewTime).toBe(microTime(t0 + 10_000));
    expect(store.lease?.spec?.acquireTime).toBe(microTime(t0));
    expect(store.writes).toBe(6);
  });

  it("with two replicas, exactly one leads and the other stays standby", async () => {
    const { replicas, leaders, run, store } = cluster(["a", "b"]);
    for (const r of replicas) void r.elector.run();
    await run(120_000);
    expect(leaders()).toHaveLength(1);
    expect(store.lease?.spec?.leaseTransitions).toBe(0);
    const standby = replicas.find((r) => !r.leading)!;
    expect(standby.log).toEqual([]);
    expect(standby.elector.leader).toBe(leaders()[0]);
  });

  it("a standby takes over after the leader dies without release, not before the lease duration", async () => {
    const { replicas, leaders, run, clock, store } = cluster(["a", "b"]);
    void replicas[0]!.elector.run();
    await run(1_000);
    void replicas[1]!.elector.run();
    await run(10_000);
    expect(leaders()).toEqual(["a"]);

    // SIGKILL: a's process is gone; nothing renews, nothing is released.
    replicas[0]!.client.down = true;
    const lastRenew = Date.parse(store.lease!.spec!.renewTime!);
    replicas[0]!.leading = false; // a dead process leads nothing
    await run(14_000);
    expect(replicas[1]!.leading).toBe(false);
    expect(clock.now() - lastRenew).toBeGreaterThanOrEqual(14_000);
    await run(4_500);
    expect(leaders()).toEqual(["b"]);
    const takeover = Number(replicas[1]!.log[0]!.split("@")[1]) - lastRenew;
    // b observed a's last renew within one retry period of it, then waited 15 s, then at most one jittered retry
    expect(takeover).toBeGreaterThanOrEqual(15_000);
    expect(takeover).toBeLessThanOrEqual(15_000 + 3_200 + 3_200);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
  });

  it("a leader that cannot renew steps down at the renew deadline, before anyone can take over", async () => {
    const { replicas, leaders, run, clock } = cluster(["a", "b"]);
    void replicas[0]!.elector.run();
    await run(500);
    void replicas[1]!.elector.run();
    await run(6_000);
    const cutAt = clock.now();
    replicas[0]!.client.down = true; // partitioned from the API server, still running
    await run(7_000);
    expect(replicas[0]!.leading).toBe(true); // not before the deadline
    await run(5_000);
    expect(replicas[0]!.leading).toBe(false);
    const stoppedAt = Number(replicas[0]!.log.at(-1)!.split("@")[1]);
    expect(replicas[0]!.log.at(-1)).toMatch(/^stop:renew-deadline@/);
    expect(stoppedAt - cutAt).toBeLessThanOrEqual(10_000);
    await run(20_000);
    expect(leaders()).toEqual(["b"]); // and the invariant held throughout (checked every 100 ms)
    const bStart = Number(replicas[1]!.log[0]!.split("@")[1]);
    expect(bStart).toBeGreaterThan(stoppedAt);
    replicas[0]!.client.down = false;
    await run(10_000);
    expect(leaders()).toEqual(["b"]); // a stepped down for good; it does not grab the lease back
  });

  it("steps down at once when the lease record names another holder", async () => {
    const { replicas, run, store } = cluster(["a"]);
    void replicas[0]!.elector.run();
    await run(1_000);
    store.lease!.spec!.holderIdentity = "intruder";
    store.lease!.metadata.resourceVersion = String(++store.rv);
    await run(2_100);
    expect(replicas[0]!.log.at(-1)).toMatch(/^stop:lost@/);
  });

  it("releases on stop so a standby takes over within a retry period, not a lease duration", async () => {
    const { replicas, leaders, run, clock, store } = cluster(["a", "b"]);
    void replicas[0]!.elector.run();
    await run(500);
    void replicas[1]!.elector.run();
    await run(5_000);
    const done = replicas[0]!.elector.run();
    await replicas[0]!.elector.stop();
    await done;
    const stoppedAt = clock.now();
    expect(replicas[0]!.log.at(-1)).toBe(`stop:stopped@${stoppedAt}`);
    expect(store.lease?.spec?.holderIdentity).toBe("");
    await run(4_500);
    expect(leaders()).toEqual(["b"]);
  });

  it("of two candidates racing for an expired lease, the resourceVersion check lets only one win", async () => {
    const { replicas, leaders, run, store, clock } = cluster(["b", "c"], () => 0);
    store.lease = {
      metadata: { name: "bulwark-operator", namespace: "bulwark-system", resourceVersion: "1" },
      spec: {
        holderIdentity: "dead",
        leaseDurationSeconds: 15,
        renewTime: microTime(clock.now()),
        leaseTransitions: 3,
      },
    };
    for (const r of replicas) void r.elector.run();
    await run(30_000);
    expect(leaders()).toHaveLength(1);
    expect(store.lease?.spec?.leaseTransitions).toBe(4);
  });

  it("reports each new observed leader once", async () => {
    const clock = new ManualClock();
    const store = new FakeLeaseStore();
    const seen: string[] = [];
    const mk = (id: string, onNewLeader?: (l: string) => void) =>
      new LeaderElector({
        client: store.client(),
        namespace: "n",
        name: "l",
        identity: id,
        clock,
        random: () => 0.5,
        onStartedLeading: () => {},
        onStoppedLeading: () => {},
        onNewLeader,
      });
    const a = mk("a");
    const b = mk("b", (l) => seen.push(l));
    void a.run();
    await clock.advance(100);
    void b.run();
    await clock.advance(20_000);
    await a.stop();
    await clock.advance(10_000);
    expect(seen).toEqual(["a", "b"]); // reported after each try, as client-go does: the empty holder is never seen between
    expect(b.isLeader).toBe(true);
    await b.stop();
    expect(store.lease?.spec?.holderIdentity).toBe("");
  });

  it("rejects timings client-go rejects", () => {
    const base = {
      client: new FakeLeaseStore().client(),
      namespace: "n",
      name: "l",
      identity: "a",
      onStartedLeading: () => {},
      onStoppedLeading: () => {},
    };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      /leaseDuration/,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2_000, retryPeriodMs: 2_000 })).toThrow(
      /renewDeadline/,
    );
    expect(() => new LeaderElector({ ...base, identity: "" })).toThrow(/identity/);
  });
});
