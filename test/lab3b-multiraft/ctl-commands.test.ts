// tinykv-ctl's command set without a cluster: how a command registers, how a line finds it, and the
// errors that need no connection.
import { describe, expect, it } from "vitest";
import type { CtlCommand, CtlContext } from "../../src/cli/ctl/command.js";
import { UsageError, helpEntry, stringFlag } from "../../src/cli/ctl/command.js";
import { CtlCommandSet, ctlCommands } from "../../src/cli/ctl/commands.js";
import { StatusApi } from "../../src/cli/ctl-status-api.js";

/** A context whose cluster is never reached: a command that tries fails the test. */
function offline(): { ctx: CtlContext; lines: string[] } {
  const lines: string[] = [];
  const ctx: CtlContext = {
    scheduler: "nowhere",
    timeoutMs: 1,
    status: new StatusApi("127.0.0.1:1", 1),
    kv: () => Promise.reject(new Error("this command should not need the cluster")),
    out: (line) => lines.push(line),
  };
  return { ctx, lines };
}

const echo: CtlCommand = {
  name: "echo",
  help: helpEntry("echo <word>... [--upper]", "prints its words"),
  options: { upper: { type: "boolean" } },
  async run(ctx, args, flags) {
    ctx.out(flags.upper ? args.join(" ").toUpperCase() : args.join(" "));
  },
};

describe("tinykv-ctl command set", () => {
  it("a command registered in a set runs from a line, with its own flag, and is listed in help", async () => {
    const set = new CtlCommandSet([echo]);
    const { ctx, lines } = offline();
    await set.runLine(ctx, 'echo "two words" --upper');
    await set.runLine(ctx, "help");
    expect(lines[0]).toBe("TWO WORDS");
    expect(lines[1]).toBe(
      [
        "Commands:",
        "  echo <word>... [--upper]             prints its words",
        "  help                                 this list",
        "  exit                                 leave the shell",
        "",
        "Keys and values are text; write 0x<hex> for bytes. Output shows printable keys as text, others as 0x<hex>.",
      ].join("\n"),
    );
  });

  it("refuses two commands with one name and one flag with two types", () => {
    expect(() => new CtlCommandSet([echo, { ...echo, options: {} }])).toThrow(/two commands are named "echo"/);
    expect(() => new CtlCommandSet([echo, { ...echo, name: "shout", options: { upper: { type: "string" } } }])).toThrow(
      /flag --upper is a boolean in one command and a string in shout/,
    );
  });

  it("bad lines are UsageErrors found before any connection", async () => {
    const { ctx } = offline();
    const cases: [string, string][] = [
      ["get", "usage: get <key> [--cf CF]"],
      ["frob", 'unknown command "frob" (try help)'],
      ["scan a --limit 0", '--limit wants a positive integer, got "0"'],
      ["scan a --txn --cf lock", "scan: --txn reads transactional data, which has no --cf"],
      ["txn put a", 'txn: bad op at "put a"; ops are get <k> | put <k> <v> | delete <k>'],
      ["store x up", 'store: the id wants a positive integer, got "x"'],
      ["get a --bogus", "Unknown option '--bogus'"],
      // Another command's flag: put has no --txn, so it must not quietly do a raw put.
      ["put k v --txn", "put does not take --txn (its flags: --cf, --ttl)"],
      ["delete k --reverse", "delete does not take --reverse (its flags: --cf)"],
    ];
    for (const [line, message] of cases) {
      const err = await ctlCommands.runLine(ctx, line).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, line).toBeInstanceOf(UsageError);
      expect((err as Error).message, line).toContain(message);
    }
    expect(stringFlag({ cf: "lock", txn: true }, "txn")).toBeUndefined();
  });
});
