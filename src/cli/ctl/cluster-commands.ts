// tinykv-ctl's cluster commands: stores and their states, scheduler operators, regions, status.
import { showPeer, showRange, table } from "../../client/display.js";
import { StoreState } from "../../proto/metapb.js";
import { physicalTime } from "../../txn/codec.js";
import type { StoreStateName } from "../ctl-status-api.js";
import { formatOperators, STORE_STATES } from "../ctl-status-api.js";
import type { CtlCommand } from "./command.js";
import { arity, helpEntry, plural, UsageError } from "./command.js";

export const storesCommand: CtlCommand = {
  name: "stores",
  help: helpEntry("stores", "stores with their state, region and leader counts"),
  async run(ctx, args) {
    arity(args, 0, 0, "stores");
    const kv = await ctx.kv();
    const [stores, regions] = await Promise.all([kv.getAllStores(), kv.getAllRegions()]);
    const regionsOn = (storeId: bigint) =>
      regions.filter((r) => r.region.peers.some((p) => p.storeId === storeId)).length;
    const rows = stores
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((st) => {
        const leaders = regions.filter((r) => r.leader?.storeId === st.id).length;
        return [
          st.id.toString(),
          st.address,
          StoreState[st.state] ?? String(st.state),
          String(regionsOn(st.id)),
          String(leaders),
        ];
      });
    ctx.out(table(["ID", "ADDRESS", "STATE", "REGIONS", "LEADERS"], rows).trimEnd());
    for (const st of stores) {
      if (st.state !== StoreState.Offline) continue;
      const left = regionsOn(st.id);
      ctx.out(
        left > 0
          ? `store ${st.id} is Offline: draining, ${plural(left, "region")} left to move away`
          : `store ${st.id} is Offline and empty: \`store ${st.id} tombstone\` removes it`,
      );
    }
  },
};

export const storeCommand: CtlCommand = {
  name: "store",
  help: helpEntry(
    "store <id> up|offline|tombstone",
    "change a store's state: offline drains it, tombstone removes",
    "a drained one (only Offline stores that hold no region)",
  ),
  async run(ctx, args) {
    arity(args, 2, 2, "store <id> up|offline|tombstone");
    const [id, state] = [args[0]!, args[1]!];
    if (!/^[1-9]\d{0,19}$/.test(id))
      throw new UsageError(`store: the id wants a positive integer, got ${JSON.stringify(id)}`);
    const wanted = state.toLowerCase();
    if (!(STORE_STATES as readonly string[]).includes(wanted)) {
      throw new UsageError(`store: the state is one of ${STORE_STATES.join(", ")}, got ${JSON.stringify(state)}`);
    }
    await ctx.status.setStoreState(BigInt(id), wanted as StoreStateName);
    ctx.out(`store ${id} is now ${wanted[0]!.toUpperCase()}${wanted.slice(1)}`);
  },
};

export const operatorsCommand: CtlCommand = {
  name: "operators",
  help: helpEntry("operators", "running and recent scheduler operators, with why each was made"),
  async run(ctx, args) {
    arity(args, 0, 0, "operators");
    for (const line of formatOperators(await ctx.status.operators())) ctx.out(line);
  },
};

export const regionsCommand: CtlCommand = {
  name: "regions",
  help: helpEntry("regions", "regions: range, epoch, peers, leader"),
  async run(ctx, args) {
    arity(args, 0, 0, "regions");
    const regions = await (await ctx.kv()).getAllRegions();
    const rows = regions.map(({ region: r, leader }) => [
      r.id.toString(),
      showRange(r),
      `ver ${r.regionEpoch?.version ?? 0n} conf ${r.regionEpoch?.confVer ?? 0n}`,
      r.peers.map((p) => showPeer(p)).join(" "),
      leader ? showPeer(leader) : "-",
    ]);
    ctx.out(table(["ID", "RANGE", "EPOCH", "PEERS (peer@store)", "LEADER"], rows).trimEnd());
    ctx.out(`(${plural(regions.length, "region")})`);
  },
};

export const statusCommand: CtlCommand = {
  name: "status",
  help: helpEntry("status", "cluster id, stores, regions, a fresh timestamp"),
  async run(ctx, args) {
    arity(args, 0, 0, "status");
    const kv = await ctx.kv();
    const [stores, regions, ts] = await Promise.all([kv.getAllStores(true), kv.getAllRegions(), kv.tso()]);
    const up = stores.filter((st) => st.state === StoreState.Up).length;
    const physical = new Date(Number(physicalTime(ts))).toISOString();
    ctx.out(`cluster id:  ${kv.clusterId}`);
    ctx.out(`scheduler:   ${kv.scheduler.leaderAddr}`);
    ctx.out(`stores:      ${stores.length} (${up} up)`);
    ctx.out(`regions:     ${regions.length}`);
    ctx.out(`tso:         ${ts} (${physical}, logical ${ts & 0x3ffffn})`);
  },
};
