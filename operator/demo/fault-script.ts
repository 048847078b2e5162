// The fault script: a loop of steps a viewer can follow, each with a caption saying what to watch for.
// Timings are the defaults below times `scale` (`bulwark up --fault-scale`), so a test can run a whole
// cycle in well under a minute; every step restores what it broke before the next starts.
import type { DemoApp } from "./apps.js";

export interface FaultStep {
  readonly id: string;
  readonly title: string;
  /** What to watch for in the view. */
  readonly watch: string;
  /** Default length, ms (scaled). */
  readonly ms: number;
  /** Marked in the view: this step shows only what exists so far. */
  readonly pending?: string;
}

export const STEPS: readonly FaultStep[] = [
  {
    id: "steady",
    title: "steady traffic",
    watch: "all policies Ready, breakers closed, nothing shed",
    ms: 8000,
  },
  {
    id: "payments-failing",
    title: "payments starts failing (503)",
    watch: "checkout's breakers open, the static fallback serves",
    ms: 10_000,
  },
  {
    id: "payments-recovered",
    title: "payments recovers",
    watch: "breakers go half_open, then closed",
    ms: 10_000,
  },
  {
    id: "inventory-slow",
    title: "inventory slows to 1s per call",
    watch: "checkout's adaptive limit falls; sheddable is shed, critical keeps succeeding",
    ms: 12_000,
  },
  {
    id: "inventory-recovered",
    title: "inventory recovers",
    watch: "the limit climbs back, shedding stops",
    ms: 6000,
  },
  {
    id: "pod-unhealthy",
    title: "payments-1 turns unhealthy (readiness fails)",
    watch: "its agent reports the app unhealthy; its quota moves to payments-0 (0/40, never above 40)",
    ms: 20_000,
  },
  { id: "pod-recovered", title: "payments-1 healthy again", watch: "quotas split evenly again", ms: 6000 },
];

export interface FaultTargets {
  readonly apps: readonly DemoApp[];
  /** Flips a Pod's Ready condition (what the kubelet does on a readiness probe). */
  setPodReady(name: string, ready: boolean): Promise<void>;
}

export interface ScriptState {
  readonly cycle: number;
  readonly step: FaultStep;
  readonly index: number;
  readonly remainingMs: number;
}

export class FaultScript {
  private timer: NodeJS.Timeout | undefined;
  private index = 0;
  private cycle = 1;
  private stepStarted = Date.now();
  private stopped = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly targets: FaultTargets,
    private readonly scale: number,
    private readonly onError: (err: unknown) => void,
  ) {}

  private duration(step: FaultStep): number {
    return Math.max(500, Math.round(step.ms * this.scale));
  }

  start(): void {
    this.enter(0);
  }

  state(): ScriptState {
    const step = STEPS[this.index] as FaultStep;
    return {
      cycle: this.cycle,
      step,
      index: this.index,
      remainingMs: Math.max(0, this.stepStarted + this.duration(step) - Date.now()),
    };
  }

  private enter(i: number): void {
    if (this.stopped) return;
    this.index = i;
    this.stepStarted = Date.now();
    const step = STEPS[i] as FaultStep;
    this.chain = this.chain.then(() => this.apply(step.id)).catch(this.onError);
    this.timer = setTimeout(() => {
      const next = (i + 1) % STEPS.length;
      if (next === 0) this.cycle++;
      this.enter(next);
    }, this.duration(step));
  }

  private app(name: string): DemoApp | undefined {
    return this.targets.apps.find((a) => a.name === name);
  }

  private async apply(id: string): Promise<void> {
    const payments = this.targets.apps.filter((a) => a.kind === "payments");
    const inventory = this.targets.apps.filter((a) => a.kind === "inventory");
    switch (id) {
      case "steady":
        return;
      case "payments-failing":
        for (const a of payments) a.faults.failing = true;
        return;
      case "payments-recovered":
        for (const a of payments) a.faults.failing = false;
        return;
      case "inventory-slow":
        for (const a of inventory) a.faults.delayMs = 1000;
        return;
      case "inventory-recovered":
        for (const a of inventory) a.faults.delayMs = 0;
        return;
      case "pod-unhealthy": {
        const a = this.app("payments-1");
        if (!a) return;
        a.faults.unhealthy = true;
        await this.targets.setPodReady(a.name, false);
        return;
      }
      case "pod-recovered": {
        const a = this.app("payments-1");
        if (!a) return;
        a.faults.unhealthy = false;
        await this.targets.setPodReady(a.name, true);
        return;
      }
    }
  }

  /** Stops the loop and undoes every fault (the apps serve normally again). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.chain;
    for (const a of this.targets.apps) {
      a.faults.failing = false;
      a.faults.delayMs = 0;
      a.faults.unhealthy = false;
    }
  }
}
