/**
 * Why a scheduler produced an operator: which scheduler, the source and target store scores it
 * compared (sizes in MiB after counting running operators), and the limits that ruled out better
 * candidates. Shown in `/operators`, GetOperator's desc and `tinykv-ctl operators`.
 */
export interface Decision {
  scheduler: string;
  /** One sentence: the rule that fired. */
  why: string;
  source?: StoreScore;
  target?: StoreScore;
  /** Size of the region the operator moves, MiB. */
  regionSize?: number;
  /** The gap a move must beat on top of twice the region size, MiB. */
  tolerance?: number;
  /** Limits that skipped a store or region while choosing, e.g. "store 4: 3 snapshots in flight (limit 3)". */
  limitsHit: string[];
}

export interface StoreScore {
  storeId: bigint;
  /** Score from heartbeats alone. */
  reported: number;
  /** Score with running operators counted (what the decision used). */
  withInfluence: number;
}

/** Limits are recorded once each and at most this many, so a decision stays readable. */
const MAX_LIMITS = 8;

export function noteLimit(limits: string[], text: string): void {
  if (limits.length < MAX_LIMITS && !limits.includes(text)) limits.push(text);
}

export function decisionSummary(d: Decision): string {
  const parts = [`${d.scheduler}: ${d.why}`];
  const score = (label: string, s: StoreScore) =>
    `${label} store ${s.storeId} score ${round(s.withInfluence)}` +
    (s.withInfluence !== s.reported ? ` (reported ${round(s.reported)})` : "");
  if (d.source) parts.push(score("source", d.source));
  if (d.target) parts.push(score("target", d.target));
  if (d.regionSize !== undefined) parts.push(`region size ${round(d.regionSize)}`);
  if (d.tolerance !== undefined) parts.push(`tolerance ${round(d.tolerance)}`);
  if (d.limitsHit.length > 0) parts.push(`limits hit: ${d.limitsHit.join("; ")}`);
  return parts.join(", ");
}

export function decisionJson(d: Decision): Record<string, unknown> {
  const store = (s: StoreScore | undefined) =>
    s && { store_id: s.storeId.toString(), score: round(s.withInfluence), reported_score: round(s.reported) };
  return {
    scheduler: d.scheduler,
    why: d.why,
    source: store(d.source) ?? null,
    target: store(d.target) ?? null,
    region_size_mib: d.regionSize ?? null,
    tolerance_mib: d.tolerance ?? null,
    limits_hit: d.limitsHit,
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
