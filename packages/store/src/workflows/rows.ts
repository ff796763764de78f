import type { WorkflowManifest } from "@havn/protocol";
import { json, num, numOrNull, type RawRow } from "../columns.js";
import type { WorkflowRow } from "./types.js";

export function rowToWorkflow(r: RawRow): WorkflowRow {
  return {
    id: r.id as string,
    name: r.name as string,
    version: r.version as string,
    creatorId: r.creator_id as string,
    manifest: json<WorkflowManifest>(r.manifest),
    contentHash: r.content_hash as string,
    originId: r.origin_id as string,
    flaggedAt: numOrNull(r.flagged_at),
    flagReason: (r.flag_reason as string | null) ?? null,
    createdAt: num(r.created_at),
  };
}
