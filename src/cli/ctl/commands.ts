// The list of tinykv-ctl commands and how a line of words finds its command. To add a command, write
// it in its own file as a CtlCommand and add it to CTL_COMMANDS below (its import and one line).
import { parseArgs } from "node:util";
import { splitWords } from "../../client/display.js";
import { errorMessage } from "../../util/retry.js";
import { backupCommand, restoreCommand } from "./backup-command.js";
import { operatorsCommand, regionsCommand, statusCommand, storeCommand, storesCommand } from "./cluster-commands.js";
import type { CtlCommand, CtlContext, CtlFlagOptions, CtlFlags } from "./command.js";
import { helpEntry, UsageError } from "./command.js";
import { deleteCommand, deleteRangeCommand, getCommand, putCommand, scanCommand, txnCommand } from "./kv-commands.js";
import { casCommand, ttlCommand } from "./cas-ttl-commands.js";
import { schedulerMemberCommand } from "./member-command.js";
import { metricsCommand } from "./metrics-command.js";
import { watchCommand } from "./watch-command.js";

/** Every command, in the order `help` lists them. */
const CTL_COMMANDS: readonly CtlCommand[] = [
  getCommand,
  putCommand,
  deleteCommand,
  scanCommand,
  deleteRangeCommand,
  txnCommand,
  casCommand,
  ttlCommand,
  watchCommand,
  storesCommand,
  storeCommand,
  operatorsCommand,
  metricsCommand,
  regionsCommand,
  statusCommand,
  backupCommand,
  restoreCommand,
  schedulerMemberCommand,
];

const FOOTER =
  "Keys and values are text; write 0x<hex> for bytes. Output shows printable keys as text, others as 0x<hex>.";

/** A set of commands: finds one by name or alias, knows every flag they read, and writes `help`. */
export class CtlCommandSet {
  private readonly byName = new Map<string, CtlCommand>();
  /** The flags accepted on a command line: the union of every command's. */
  readonly options: CtlFlagOptions = {};
  /** The `help` text, which the binary's --help includes. */
  readonly helpText: string;

  constructor(commands: readonly CtlCommand[]) {
    const help: CtlCommand = {
      name: "help",
      help: helpEntry("help", "this list"),
      run: async (ctx) => ctx.out(this.helpText.trimEnd()),
    };
    for (const cmd of [...commands, help]) {
      for (const name of [cmd.name, ...(cmd.aliases ?? [])]) {
        if (this.byName.has(name) || name === "exit" || name === "quit")
          throw new Error(`tinykv-ctl: two commands are named ${JSON.stringify(name)}`);
        this.byName.set(name, cmd);
      }
      for (const [flag, option] of Object.entries(cmd.options ?? {})) {
        const known = this.options[flag];
        if (known && known.type !== option.type)
          throw new Error(
            `tinykv-ctl: flag --${flag} is a ${known.type} in one command and a ${option.type} in ${cmd.name}`,
          );
        this.options[flag] = option;
      }
    }
    const entries = [...commands, help].map((c) => c.help);
    this.helpText = ["Commands:", ...entries, helpEntry("exit", "leave the shell"), "", FOOTER, ""].join("\n");
  }

  /** Runs the command named by the first word with the rest as its arguments. */
  async run(ctx: CtlContext, words: readonly string[], flags: CtlFlags): Promise<void> {
    const [name, ...args] = words;
    const cmd = name === undefined ? undefined : this.byName.get(name);
    if (!cmd) throw new UsageError(`unknown command ${JSON.stringify(name)} (try help)`);
    // The line is parsed against every command's flags, so one meant for another command (put
    // --txn) would pass unseen and the command would do what it always does: refuse it here.
    const accepted = Object.keys(cmd.options ?? {});
    const stray = Object.keys(flags).filter((flag) => flags[flag] !== undefined && !accepted.includes(flag));
    if (stray.length > 0)
      throw new UsageError(
        `${cmd.name} does not take ${stray.map((f) => `--${f}`).join(", ")}` +
          (accepted.length > 0 ? ` (its flags: ${accepted.map((f) => `--${f}`).join(", ")})` : ""),
      );
    await cmd.run(ctx, args, flags);
  }

  /** Splits a shell line into words and flags (quotes as a shell would), then runs it. */
  async runLine(ctx: CtlContext, line: string): Promise<void> {
    let parsed;
    try {
      parsed = parseArgs({ args: splitWords(line), options: this.options, strict: true, allowPositionals: true });
    } catch (err) {
      throw new UsageError(errorMessage(err));
    }
    await this.run(ctx, parsed.positionals, parsed.values);
  }
}

export const ctlCommands = new CtlCommandSet(CTL_COMMANDS);
