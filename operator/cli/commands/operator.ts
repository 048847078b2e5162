// Placeholder until issue 5 lands: says so plainly instead of pretending to work.
import { CommandError, type Command } from "../command.js";

export const command: Command = {
  help: "Usage: bulwark operator — not built yet (issue 5).",
  run() {
    return Promise.reject(new CommandError("not built yet (issue 5)", 1));
  },
};
