import { ConfChangeType } from "../../raft/index.js";
import type {
  Member,
  MemberAddRequest,
  MemberAddResponse,
  MemberRemoveRequest,
  MemberRemoveResponse,
} from "../../proto/schedulerpb.js";
import { ClusterMember } from "../../proto/schedulerraftpb.js";
import type { Membership } from "../../proto/schedulerraftpb.js";
import type { Logger } from "../../util/logger.js";
import { SchedulerError } from "../errors.js";
import type { SchedulerMember } from "./member.js";
import { MembershipChangeRefusedError } from "./member.js";
import type { MemberStorage } from "./member-storage.js";
import { memberNameProblem, peerAddrProblem, stripScheme } from "./members.js";

export interface MembershipAdminDeps {
  member: SchedulerMember;
  storage: MemberStorage;
  /** The term this member serves in (changes are proposed in it, and refused after it). */
  term: () => bigint;
  clusterId: () => Promise<bigint>;
  /** The members as GetMembers shows them. */
  view: () => Member[];
  log: Logger;
}

/**
 * `member add` / `member remove` on the serving leader: validates the request, then proposes one
 * raft conf change and answers once it applied here. An added member's id is the membership's
 * next id (never reused); its name and peer address ride in the change. Raft takes one change at
 * a time: a second one meanwhile is refused with a message to retry.
 */
export class MembershipAdmin {
  constructor(private readonly d: MembershipAdminDeps) {}

  async add(req: MemberAddRequest): Promise<MemberAddResponse> {
    await this.checkHeader(req.header?.clusterId);
    const name = req.name.trim();
    if (req.peerUrls.length !== 1)
      throw SchedulerError.unknown(`member add wants one peer address, got ${req.peerUrls.length}`);
    const peerAddr = stripScheme(req.peerUrls[0]!);
    const bad = memberNameProblem(name) ?? peerAddrProblem(name, peerAddr);
    if (bad) throw SchedulerError.unknown(bad);
    const before = this.membership();
    const same = before.members.find((m) => m.name === name);
    if (same) {
      // The same request again (a retry after an unknown outcome) has nothing left to do.
      if (same.peerAddr === peerAddr) return this.addAnswer(same.id);
      throw SchedulerError.unknown(`member ${name} already exists, with peer address ${same.peerAddr}`);
    }
    const taken = before.members.find((m) => m.peerAddr === peerAddr);
    if (taken) throw SchedulerError.unknown(`peer address ${peerAddr} is member ${taken.name}'s`);
    // The new member starts from a snapshot: make sure one exists and the log before it is gone.
    if (this.d.storage.firstIndex() <= 1n) await this.d.member.compactNow();
    const id = before.nextMemberId;
    const context = Buffer.from(ClusterMember.encode({ id, name, peerAddr }).finish());
    await this.propose(ConfChangeType.AddNode, id, context);
    this.d.log.info({ added: name, member_id: id.toString(), peer_addr: peerAddr }, "added a scheduler member");
    return this.addAnswer(id);
  }

  async remove(req: MemberRemoveRequest): Promise<MemberRemoveResponse> {
    await this.checkHeader(req.header?.clusterId);
    const before = this.membership();
    const gone = before.members.find((m) => m.name === req.name);
    // A retry after an unknown outcome (the answer was lost, the leader changed): already done.
    if (!gone && before.removed.some((m) => m.name === req.name))
      return { header: await this.header(), members: this.d.view() };
    if (!gone)
      throw SchedulerError.unknown(
        `no member named ${JSON.stringify(req.name.slice(0, 64))} (members: ${before.members.map((m) => m.name).join(",")})`,
      );
    if (before.members.length === 1) throw SchedulerError.unknown(`member ${gone.name} is the last one: it cannot go`);
    await this.propose(ConfChangeType.RemoveNode, gone.id, Buffer.alloc(0));
    this.d.log.info({ removed: gone.name, member_id: gone.id.toString() }, "removed a scheduler member");
    return { header: await this.header(), members: this.d.view() };
  }

  private membership(): Membership {
    const m = this.d.storage.membership;
    // A serving leader applied its own barrier, so it holds a membership.
    if (!m) throw SchedulerError.unknown("this member knows no membership yet");
    return m;
  }

  private async propose(changeType: ConfChangeType, nodeId: bigint, context: Buffer): Promise<void> {
    try {
      await this.d.member.proposeConfChange({ changeType, nodeId, context }, this.d.term());
    } catch (err) {
      if (err instanceof MembershipChangeRefusedError) throw SchedulerError.unknown(err.message);
      throw err;
    }
  }

  private async addAnswer(id: bigint): Promise<MemberAddResponse> {
    const members = this.d.view();
    return { header: await this.header(), member: members.find((m) => m.memberId === id), members };
  }

  private async header() {
    return { clusterId: await this.d.clusterId() };
  }

  private async checkHeader(clusterId: bigint | undefined): Promise<void> {
    const ours = await this.d.clusterId();
    if (clusterId && ours && clusterId !== ours)
      throw SchedulerError.unknown(`mismatch cluster id, need ${ours} but got ${clusterId}`);
  }
}
