// tinykv-ctl backup and restore as CtlCommands: progress goes to stderr, the outcome to the sink.
import type { CtlCommand } from "./command.js";
import { helpEntry, stringFlag, UsageError } from "./command.js";
import { backup } from "./backup.js";
import { restore } from "./restore.js";

const progress = (line: string) => process.stderr.write(line + "\n");

export const backupCommand: CtlCommand = {
  name: "backup",
  help: helpEntry(
    "backup --to DIR",
    "copy every key into a new DIR: transactional data as of one",
    "timestamp, raw data region by region (not point-in-time)",
  ),
  options: { to: { type: "string" } },
  async run(ctx, args, flags) {
    const to = stringFlag(flags, "to");
    if (args.length > 0 || !to || flags.from !== undefined) throw new UsageError("usage: backup --to DIR");
    const m = await backup(await ctx.kv(), to, progress);
    ctx.out(
      `backup of cluster ${m.clusterId} at ts ${m.backupTs} written to ${to}: ${m.files.map((f) => `${f.name} ${f.count}`).join(", ")}`,
    );
  },
};

export const restoreCommand: CtlCommand = {
  name: "restore",
  help: helpEntry("restore --from DIR", "verify a backup's checksums and load it into an empty cluster"),
  options: { from: { type: "string" } },
  async run(ctx, args, flags) {
    const from = stringFlag(flags, "from");
    if (args.length > 0 || !from || flags.to !== undefined) throw new UsageError("usage: restore --from DIR");
    const m = await restore(await ctx.kv(), from, progress);
    ctx.out(`restored ${m.files.reduce((n, f) => n + f.count, 0)} keys from ${from} (backup ts ${m.backupTs})`);
  },
};
