// Process supervision for `bulwark up`: each demo pod's agent is a real `bulwark agent` child process (its
// own event loop and metrics, as in a pod). The supervisor records every child's pid in <state-dir>/demo/
// pids.json so a later run can end what a killed run left behind, stops them all on shutdown (SIGTERM, then
// SIGKILL after a grace period), and notices a child that dies on its own.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ChildSpec {
  readonly name: string;
  /** An executable to run; default: node with this process's loader flags (`bulwark` subcommands). */
  readonly command?: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  readonly logFile: string;
}

export interface ChildInfo {
  readonly name: string;
  readonly pid: number;
  readonly exitCode: number | null | undefined;
}

interface PidFile {
  upPid: number;
  children: { name: string; pid: number }[];
}

/** True while `pid` runs (signal 0 probes without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/**
 * Ends what a previous run left: refuses when that run's `bulwark up` still runs, kills its stray agents
 * and Prometheus (only processes whose command line still is one, so a reused pid is left alone).
 */
export async function cleanStale(pidFile: string): Promise<{ killed: number } | { running: number }> {
  if (!existsSync(pidFile)) return { killed: 0 };
  let old: PidFile;
  try {
    old = JSON.parse(readFileSync(pidFile, "utf8")) as PidFile;
  } catch {
    return { killed: 0 };
  }
  if (old.upPid !== process.pid && alive(old.upPid) && / up( |$)/.test(cmdline(old.upPid)))
    return { running: old.upPid };
  const killed: number[] = [];
  for (const c of old.children) {
    if (!alive(c.pid)) continue;
    const cmd = cmdline(c.pid);
    if (cmd !== "" && !/ agent |prometheus/.test(cmd)) continue;
    try {
      process.kill(c.pid, "SIGKILL");
      killed.push(c.pid);
    } catch {
      /* gone meanwhile */
    }
  }
  // Wait (briefly) until they are gone, so their ports are free for this run.
  for (let i = 0; i < 30 && killed.some((pid) => alive(pid) && cmdline(pid) !== ""); i++)
    await new Promise((r) => setTimeout(r, 100));
  return { killed: killed.length };
}

export class Supervisor {
  private readonly children = new Map<string, { proc: ChildProcess; exitCode: number | null | undefined }>();
  private stopping = false;

  constructor(
    private readonly pidFile: string,
    private readonly onUnexpectedExit: (name: string, code: number | null, signal: string | null) => void,
  ) {
    this.writePids();
  }

  /** Starts `node <the running bulwark entry point> ...args` with the same loader flags as this process. */
  start(spec: ChildSpec): ChildInfo {
    const entry = process.argv[1];
    if (!entry) throw new Error("cannot tell which script runs bulwark (process.argv[1] is empty)");
    const fd = openSync(spec.logFile, "a");
    const [command, args] = spec.command
      ? [spec.command, [...spec.args]]
      : [process.execPath, [...process.execArgv, ...spec.args]];
    const proc = spawn(command, args, {
      stdio: ["ignore", fd, fd],
      // Its own process group: a Ctrl-C reaches only `bulwark up`, which then stops the agents in order.
      detached: true,
      env: { ...process.env, ...spec.env },
    });
    closeSync(fd);
    const entryState = { proc, exitCode: undefined as number | null | undefined };
    this.children.set(spec.name, entryState);
    proc.on("exit", (code, signal) => {
      entryState.exitCode = code ?? (signal ? -1 : null);
      if (!this.stopping) this.onUnexpectedExit(spec.name, code, signal);
    });
    proc.on("error", () => undefined);
    this.writePids();
    return { name: spec.name, pid: proc.pid ?? -1, exitCode: undefined };
  }

  list(): ChildInfo[] {
    return [...this.children].map(([name, c]) => ({ name, pid: c.proc.pid ?? -1, exitCode: c.exitCode }));
  }

  /** SIGTERM to all, SIGKILL to those still running after `graceMs`; resolves when all have exited. */
  async stopAll(graceMs = 6000): Promise<void> {
    this.stopping = true;
    const running = [...this.children.values()].filter((c) => c.exitCode === undefined);
    await Promise.all(
      running.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
            const kill = setTimeout(() => c.proc.kill("SIGKILL"), graceMs);
            c.proc.once("exit", () => {
              clearTimeout(kill);
              resolve();
            });
            c.proc.kill("SIGTERM");
          }),
      ),
    );
    writeFileSync(this.pidFile, JSON.stringify({ upPid: process.pid, children: [] }) + "\n");
  }

  private writePids(): void {
    const body: PidFile = {
      upPid: process.pid,
      children: [...this.children].map(([name, c]) => ({ name, pid: c.proc.pid ?? -1 })),
    };
    writeFileSync(this.pidFile, JSON.stringify(body) + "\n");
  }
}

/** The `node` arguments that run `bulwark agent` for one demo pod. */
export function agentArgs(o: {
  preload: string;
  operatorUrl: string;
  tokenFile: string;
  pod: string;
  namespace: string;
  adminPort: number;
  outboundPort: number;
  inboundPort: number;
  appPort: number;
  stateDir: string;
}): string[] {
  const entry = process.argv[1] ?? join(process.cwd(), "dist/operator/cli/main.js");
  return [
    "--import",
    o.preload,
    entry,
    "agent",
    "--operator",
    o.operatorUrl,
    "--token-file",
    o.tokenFile,
    "--pod",
    o.pod,
    "--namespace",
    o.namespace,
    "--admin-port",
    String(o.adminPort),
    "--outbound-port",
    String(o.outboundPort),
    "--inbound-port",
    String(o.inboundPort),
    "--app-port",
    String(o.appPort),
    "--listen-address",
    "127.0.0.1",
    "--state-dir",
    o.stateDir,
    // Reports every second so pod health and quotas move within seconds of a fault (the default is 5 s).
    "--report-interval",
    "1",
  ];
}
