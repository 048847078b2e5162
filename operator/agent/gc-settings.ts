// V8 garbage-collector settings for the sidecar process, applied by `bulwark agent` when it starts.
//
// --no-parallel-scavenge: V8 splits each young-generation collection (a scavenge, several per second under
// load: the agent allocates ~9 KB per proxied request, most of it in Node's HTTP stack) over helper threads
// and waits for all of them before JavaScript runs again. What survives a scavenge in the agent is small
// (the requests in flight: tens to hundreds of KB), so one thread copies it in a fraction of a millisecond.
// But a sidecar has one CPU or less (the chart requests 50m; the bench pins it to one core), where the
// helpers cannot run beside the main thread: the pause lasts until each helper has been scheduled, and one
// preempted by other work holds every request in flight for that long. Measured in docs/agent.md
// ("Tail latency"). Marking and sweeping stay concurrent: they run while the event loop waits for I/O.
//
// Set at run time, not as a node flag: V8 reads this flag at every scavenge and Node leaves V8's flags
// writable after start (it passes --no-freeze-flags-after-init for v8.setFlagsFromString), so the setting
// lives with the agent command for the image, the injected sidecar and a standalone agent alike, and the
// operator, which shares the image's ENTRYPOINT, keeps parallel scavenges for its larger heap.
import v8 from "node:v8";

export const AGENT_V8_FLAGS: readonly string[] = ["--no-parallel-scavenge"];

/** Applies AGENT_V8_FLAGS to this process. Process-wide: only the agent command calls it, never a test. */
export function applyAgentGcSettings(): void {
  for (const flag of AGENT_V8_FLAGS) v8.setFlagsFromString(flag);
}
