import type { KvClient } from "../../client/client.js";
import { backup } from "./backup.js";
import { restore } from "./restore.js";

/** Bad arguments to backup/restore; tinykv-ctl exits 2 for it as for any usage error. */
export class BackupUsageError extends Error {
  override name = "UsageError";
}

/** `backup --to DIR` and `restore --from DIR`: progress on stderr, the outcome on `out`. */
export async function runBackupCommand(cmd: "backup" | "restore", connect: () => Promise<KvClient>, args: string[], flags: { to?: string; from?: string }, out: (line: string) => void): Promise<void> {
  const progress = (line: string) => process.stderr.write(line + "\n");
  if (cmd === "backup") {
    if (args.length > 0 || !flags.to || flags.from !== undefined) throw new BackupUsageError("usage: backup --to DIR");
    const m = await backup(await connect(), flags.to, progress);
    out(`backup of cluster ${m.clusterId} at ts ${m.backupTs} written to ${flags.to}: ${m.files.map((f) => `${f.name} ${f.count}`).join(", ")}`);
    return;
  }
  if (args.length > 0 || !flags.from || flags.to !== undefined) throw new BackupUsageError("usage: restore --from DIR");
  const m = await restore(await connect(), flags.from, progress);
  out(`restored ${m.files.reduce((n, f) => n + f.count, 0)} keys from ${flags.from} (backup ts ${m.backupTs})`);
}
