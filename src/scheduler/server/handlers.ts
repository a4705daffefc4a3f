/**
 * The Scheduler rpcs as plain functions over the core: check the header, call the core, build the
 * response; a header error (SchedulerError) is answered in the response header, anything else is
 * thrown for the carrier to map (gRPC status in service.ts, the simulated network in-process).
 */
import { Peer, Region } from "../../proto/metapb.js";
import type { RegionHeartbeatRequest, RequestHeader, ResponseHeader, TsoRequest } from "../../proto/schedulerpb.js";
import {
  AllocIDResponse,
  AskSplitResponse,
  BootstrapResponse,
  GetAllStoresResponse,
  GetClusterConfigResponse,
  GetGCSafePointResponse,
  GetMembersResponse,
  GetOperatorResponse,
  GetRegionResponse,
  GetStoreResponse,
  IsBootstrappedResponse,
  Member,
  MemberAddResponse,
  MemberRemoveResponse,
  PutClusterConfigResponse,
  PutStoreResponse,
  RegionHeartbeatResponse,
  ScanRegionsResponse,
  ScatterRegionResponse,
  StoreHeartbeatResponse,
  TsoResponse,
  UpdateGCSafePointResponse,
} from "../../proto/schedulerpb.js";
import type { SchedulerUnaryCalls } from "../api.js";
import type { SchedulerCore } from "../core/core.js";
import { SchedulerError } from "../errors.js";
import type { RegionInfo } from "../core/region-info.js";

interface Factory<T> {
  create(base?: object): T;
}

type WithHeader = { header?: RequestHeader | undefined };

/** What to do with one region heartbeat on its stream. */
export interface HeartbeatOutcome {
  /** Bind the stream to the leader's store: scheduler commands for that store go there. */
  bindStoreId?: bigint;
  /** Answer on the stream (a header error), which continues unless `end`. */
  reply?: RegionHeartbeatResponse;
  end?: boolean;
}

export interface SchedulerHandlers extends SchedulerUnaryCalls {
  /** One TsoRequest of the bidi stream; throws (ending the stream) on a header mismatch. */
  tso(req: TsoRequest): Promise<TsoResponse>;
  /** One RegionHeartbeatRequest; throws ClusterIdMismatchError / InvalidRequestError when the stream must fail. */
  regionHeartbeat(req: RegionHeartbeatRequest): HeartbeatOutcome;
}

const NOT_REPLICATED =
  "this scheduler is not replicated (started without --initial-cluster): it has no members to add or remove";

function leaderPeer(r: RegionInfo): Peer | undefined {
  return r.leader ? Peer.create(r.leader) : undefined;
}

export function createSchedulerHandlers(
  core: SchedulerCore,
  self: { name: string; clientUrl: string },
): SchedulerHandlers {
  const header = (error?: SchedulerError): ResponseHeader => ({
    clusterId: core.clusterId,
    error: error ? { type: error.type, message: error.message } : undefined,
  });

  function unary<Req extends WithHeader, Resp>(
    factory: Factory<Resp>,
    fn: (req: Req) => object | Promise<object>,
    checkHeader = true,
  ): (req: Req) => Promise<Resp> {
    return async (req) => {
      try {
        if (checkHeader) core.checkHeader(req.header);
        return factory.create({ header: header(), ...(await fn(req)) });
      } catch (err) {
        if (err instanceof SchedulerError) return factory.create({ header: header(err) });
        throw err;
      }
    };
  }

  const member = Member.create({
    name: self.name,
    memberId: core.clusterId ^ 0x5eedn,
    clientUrls: [self.clientUrl],
    peerUrls: [],
  });
  const regionResponse = (r: RegionInfo | undefined) =>
    r ? { region: Region.create(r.meta), leader: leaderPeer(r) } : {};

  return {
    getMembers: unary(GetMembersResponse, () => ({ members: [member], leader: member, etcdLeader: member }), false),
    bootstrap: unary(BootstrapResponse, async (req) => {
      await core.bootstrap(req.store);
      return {};
    }),
    isBootstrapped: unary(IsBootstrappedResponse, () => ({ bootstrapped: core.isBootstrapped() })),
    allocId: unary(AllocIDResponse, async () => ({ id: await core.allocId() })),
    getStore: unary(GetStoreResponse, (req) => {
      const s = core.getStore(req.storeId);
      return { store: s.meta, stats: s.stats };
    }),
    putStore: unary(PutStoreResponse, async (req) => {
      await core.putStore(req.store);
      return {};
    }),
    getAllStores: unary(GetAllStoresResponse, (req) => ({ stores: core.getAllStores(req.excludeTombstoneStores) })),
    storeHeartbeat: unary(StoreHeartbeatResponse, (req) => {
      core.storeHeartbeat(req.stats);
      return {};
    }),
    getRegion: unary(GetRegionResponse, (req) => regionResponse(core.getRegionByKey(req.regionKey))),
    getPrevRegion: unary(GetRegionResponse, (req) => regionResponse(core.getPrevRegion(req.regionKey))),
    getRegionById: unary(GetRegionResponse, (req) => regionResponse(core.getRegionById(req.regionId))),
    scanRegions: unary(ScanRegionsResponse, (req) => {
      const rs = core.scanRegions(req.startKey, req.endKey, req.limit);
      return { regions: rs.map((r) => Region.create(r.meta)), leaders: rs.map((r) => leaderPeer(r) ?? Peer.create()) };
    }),
    askSplit: unary(AskSplitResponse, (req) => core.askSplit(req.region)),
    getClusterConfig: unary(GetClusterConfigResponse, () => ({ cluster: core.getClusterConfig() })),
    putClusterConfig: unary(PutClusterConfigResponse, async (req) => {
      await core.putClusterConfig(req.cluster);
      return {};
    }),
    scatterRegion: unary(ScatterRegionResponse, () => ({})),
    getGcSafePoint: unary(GetGCSafePointResponse, () => ({ safePoint: core.getGcSafePoint() })),
    updateGcSafePoint: unary(UpdateGCSafePointResponse, async (req) => ({
      newSafePoint: await core.updateGcSafePoint(req.safePoint),
    })),
    getOperator: unary(GetOperatorResponse, (req) => {
      const op = core.getOperator(req.regionId);
      if (!op) throw SchedulerError.regionNotFound(`no operator for region ${req.regionId}`);
      return { regionId: req.regionId, desc: Buffer.from(op.desc), kind: Buffer.from(op.kind), status: op.status };
    }),

    // A single scheduler has one member, itself; a replicated member answers these in its own service.
    memberAdd: unary(MemberAddResponse, () => {
      throw SchedulerError.unknown(NOT_REPLICATED);
    }),
    memberRemove: unary(MemberRemoveResponse, () => {
      throw SchedulerError.unknown(NOT_REPLICATED);
    }),

    async tso(req) {
      core.checkHeader(req.header);
      const ts = await core.nextTimestamp(req.count);
      return TsoResponse.create({
        header: header(),
        count: req.count,
        timestamp: { physical: BigInt(ts.physical), logical: BigInt(ts.logical) },
      });
    },

    regionHeartbeat(req) {
      core.checkHeader(req.header);
      if (!core.isBootstrapped()) {
        return {
          reply: RegionHeartbeatResponse.create({ header: header(SchedulerError.notBootstrapped()) }),
          end: true,
        };
      }
      const bindStoreId = core.leaderStoreOf(req).id;
      try {
        core.handleRegionHeartbeat(req);
      } catch (err) {
        if (!(err instanceof SchedulerError)) throw err;
        const reply = RegionHeartbeatResponse.create({
          header: header(err),
          regionId: req.region?.id ?? 0n,
          targetPeer: req.leader,
        });
        return { bindStoreId, reply };
      }
      return { bindStoreId };
    },
  };
}
