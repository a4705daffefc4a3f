import type { sendUnaryData, ServerDuplexStream, ServerUnaryCall, UntypedHandleCall } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import type {
  GetMembersResponse,
  MemberAddRequest,
  MemberAddResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
  RegionHeartbeatRequest,
  RegionHeartbeatResponse,
  SchedulerServer,
  TsoRequest,
  TsoResponse,
} from "../../proto/schedulerpb.js";
import { ErrorType, SchedulerService } from "../../proto/schedulerpb.js";
import type { SchedulerHandlers } from "../server/handlers.js";
import type { HeartbeatStream } from "../server/heartbeat-streams.js";
import { grpcError, toGrpcError } from "../server/service.js";
import { SchedulerError } from "../errors.js";
import { NotLeaderError } from "./member.js";

/** What the leader serves with while it leads in one term. */
export interface ServingLeader {
  service: SchedulerServer;
  handlers: SchedulerHandlers;
  /** Heartbeat streams opened in this term: ended when the term's leadership ends. */
  streams: Set<HeartbeatStream>;
}

export interface MemberServiceDeps {
  /** The serving leader, only while this member leads with a valid lease. */
  serving(): ServingLeader | undefined;
  /** Why this member does not serve, naming the leader when known. */
  notLeaderMessage(): string;
  /** The cluster id this member knows (0 before the first leader created it). */
  clusterId(): Promise<bigint>;
  getMembers(): Promise<GetMembersResponse>;
  /** Membership changes: only called while this member serves. */
  memberAdd(req: MemberAddRequest): Promise<MemberAddResponse>;
  memberRemove(req: MemberRemoveRequest): Promise<MemberRemoveResponse>;
}

/** Every unary rpc but GetMembers (which every member answers itself). */
const UNARY: ReadonlyArray<
  Exclude<
    keyof SchedulerServer & keyof typeof SchedulerService,
    "getMembers" | "tso" | "regionHeartbeat" | "memberAdd" | "memberRemove"
  >
> = [
  "bootstrap",
  "isBootstrapped",
  "allocId",
  "getStore",
  "putStore",
  "getAllStores",
  "storeHeartbeat",
  "getRegion",
  "getPrevRegion",
  "getRegionById",
  "scanRegions",
  "askSplit",
  "getClusterConfig",
  "putClusterConfig",
  "scatterRegion",
  "getGcSafePoint",
  "updateGcSafePoint",
  "getOperator",
];

/** A response of the rpc's own type with every field at its default (decoding nothing gives that). */
function emptyResponse(name: keyof typeof SchedulerService): { header?: object } {
  return SchedulerService[name].responseDeserialize(Buffer.alloc(0)) as { header?: object };
}

/**
 * The Scheduler service of one member of a replicated scheduler. GetMembers is answered by every
 * member; every other rpc goes to the term's serving leader, and a member that is not it (a
 * follower, a leader still catching up, a leader whose lease ran out) answers with a NOT_LEADER
 * header error that names the leader, as PD does, so clients look the leader up again.
 */
export function createMemberService(deps: MemberServiceDeps): SchedulerServer {
  const notLeaderHeader = async () => ({
    clusterId: await deps.clusterId(),
    error: { type: ErrorType.NOT_LEADER, message: deps.notLeaderMessage() },
  });

  const unary =
    (name: (typeof UNARY)[number]) => (call: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => {
      const leader = deps.serving();
      if (leader) return (leader.service[name] as (c: typeof call, cb: sendUnaryData<unknown>) => void)(call, cb);
      notLeaderHeader().then(
        (header) => cb(null, { ...emptyResponse(name), header }),
        (err: unknown) => cb(toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err))),
      );
    };

  /** A membership rpc: the member's own, on the serving leader only. */
  const admin =
    <Req, Resp>(name: "memberAdd" | "memberRemove", fn: (req: Req) => Promise<Resp>) =>
    (call: ServerUnaryCall<Req, Resp>, cb: sendUnaryData<Resp>) => {
      const answer = async (): Promise<Resp> => {
        if (!deps.serving()) return { ...emptyResponse(name), header: await notLeaderHeader() } as Resp;
        try {
          return await fn(call.request);
        } catch (err) {
          // The change was refused or is invalid: say why in the header, as the core's rpcs do.
          if (err instanceof SchedulerError)
            return {
              ...emptyResponse(name),
              header: { clusterId: await deps.clusterId(), error: { type: err.type, message: err.message } },
            } as Resp;
          // The leader lost its term meanwhile: NOT_LEADER, so the client asks the new one.
          if (err instanceof NotLeaderError) return { ...emptyResponse(name), header: await notLeaderHeader() } as Resp;
          throw err;
        }
      };
      answer().then(
        (resp) => cb(null, resp),
        (err: unknown) => cb(toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err))),
      );
    };

  const service: Record<string, UntypedHandleCall> = {
    memberAdd: admin("memberAdd", deps.memberAdd),
    memberRemove: admin("memberRemove", deps.memberRemove),

    getMembers: (_call: ServerUnaryCall<unknown, GetMembersResponse>, cb: sendUnaryData<GetMembersResponse>) => {
      deps.getMembers().then(
        (resp) => cb(null, resp),
        (err: unknown) => cb(toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err))),
      );
    },

    // Checked per request, not per stream: a leader that loses its lease mid-stream stops at once.
    tso: (call: ServerDuplexStream<TsoRequest, TsoResponse>) => {
      let chain = Promise.resolve();
      call.on("data", (req: TsoRequest) => {
        chain = chain.then(async () => {
          if (call.destroyed) return;
          const leader = deps.serving();
          try {
            if (leader) call.write(await leader.handlers.tso(req));
            else call.write({ ...(emptyResponse("tso") as TsoResponse), header: await notLeaderHeader() });
          } catch (err) {
            call.emit("error", toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err)));
          }
        });
      });
      call.on("end", () => void chain.then(() => call.end()));
      // The client went away: nothing to answer.
      call.on("error", () => {});
    },

    regionHeartbeat: (call: ServerDuplexStream<RegionHeartbeatRequest, RegionHeartbeatResponse>) => {
      const leader = deps.serving();
      if (leader) {
        leader.streams.add(call);
        call.on("close", () => leader.streams.delete(call));
        return leader.service.regionHeartbeat(call);
      }
      // The client went away: nothing to answer.
      call.on("error", () => {});
      notLeaderHeader().then(
        (header) => {
          if (call.destroyed) return;
          call.write({ ...(emptyResponse("regionHeartbeat") as RegionHeartbeatResponse), header });
          call.end();
        },
        (err: unknown) => call.emit("error", toGrpcError(err) ?? grpcError(status.UNKNOWN, String(err))),
      );
    },
  };
  for (const name of UNARY) service[name] = unary(name);
  return service as unknown as SchedulerServer;
}
