// The shape every subcommand file exports, and the error that carries an exit code
// (0 success, 1 runtime failure, 2 usage or invalid input — see CONTRACT.md).
import { parseArgs, type ParseArgsConfig } from "node:util";

export interface Command {
  /** Full `--help` text: usage line, what the command does, every flag with its default. */
  readonly help: string;
  /** Runs the command; resolves to the process exit code. Long-running commands resolve on shutdown. */
  run(argv: string[]): Promise<number>;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "CommandError";
  }
}

/** node:util parseArgs with unknown flags and bad values turned into usage errors (exit 2). */
export function parseFlags<T extends NonNullable<ParseArgsConfig["options"]>>(argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new CommandError((err as Error).message, 2, { cause: err });
  }
}

/** Resolves when the process is asked to stop (SIGINT or SIGTERM). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
