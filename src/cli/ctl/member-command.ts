// tinykv-ctl's `scheduler member` command: list, add and remove the members of a replicated
// scheduler (etcd's `etcdctl member list|add|remove`), through the scheduler leader.
import { table } from "../../client/display.js";
import type { GetMembersResponse, Member } from "../../proto/schedulerpb.js";
import { SchedulerRpcClient } from "../../scheduler/client/client.js";
import type { CtlCommand, CtlContext } from "./command.js";
import { arity, helpEntry, UsageError } from "./command.js";

const USAGE = "scheduler member list | add <name> <peer-addr> | remove <name>";

async function withScheduler<T>(ctx: CtlContext, fn: (c: SchedulerRpcClient) => Promise<T>): Promise<T> {
  const client = await SchedulerRpcClient.connect(ctx.scheduler, {
    connectDeadlineMs: ctx.timeoutMs,
    retryDeadlineMs: ctx.timeoutMs,
    // A change waits for a raft commit; a retried call finds a done add or remove answered as done.
    timeoutMs: Math.min(ctx.timeoutMs, 5_000),
    tls: ctx.tls,
  });
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

function showMembers(ctx: CtlContext, members: readonly Member[], leader?: Member): void {
  const rows = members.map((m) => [
    m.name,
    m.memberId.toString(),
    m.peerUrls.join(","),
    m.clientUrls.join(",") || "-",
    leader && m.memberId === leader.memberId ? "leader" : "",
  ]);
  ctx.out(table(["NAME", "ID", "PEER", "CLIENT", ""], rows).trimEnd());
}

export const schedulerMemberCommand: CtlCommand = {
  name: "scheduler",
  help: helpEntry(
    USAGE,
    "the members of a replicated scheduler: a new member joins with",
    "--initial-cluster-state existing after `add`; removing the leader makes it step down",
  ),
  async run(ctx, args) {
    if (args[0] !== "member") throw new UsageError(`usage: ${USAGE}`);
    const [verb, ...rest] = args.slice(1);
    switch (verb) {
      case "list": {
        arity(rest, 0, 0, "scheduler member list");
        const r: GetMembersResponse = await withScheduler(ctx, (c) => c.members());
        showMembers(ctx, r.members, r.leader);
        return;
      }
      case "add": {
        arity(rest, 2, 2, "scheduler member add <name> <peer-addr>");
        const [name, peerAddr] = [rest[0]!, rest[1]!];
        const r = await withScheduler(ctx, (c) => c.memberAdd(name, peerAddr));
        ctx.out(`added member ${name} (id ${r.member?.memberId ?? "?"}); start it with:`);
        ctx.out(
          `  tinyscheduler --name ${name} --peer-addr ${peerAddr} --initial-cluster-state existing --initial-cluster ` +
            r.members.map((m) => `${m.name}=${m.peerUrls[0] ?? ""}`).join(","),
        );
        showMembers(ctx, r.members);
        return;
      }
      case "remove": {
        arity(rest, 1, 1, "scheduler member remove <name>");
        const r = await withScheduler(ctx, (c) => c.memberRemove(rest[0]!));
        ctx.out(`removed member ${rest[0]}`);
        showMembers(ctx, r.members);
        return;
      }
      default:
        throw new UsageError(`usage: ${USAGE}`);
    }
  },
};
