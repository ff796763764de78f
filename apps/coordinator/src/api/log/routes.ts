import type { FastifyInstance, FastifyRequest } from "fastify";
import { HavnError, inclusionPath, type LogEntryView } from "@havn/protocol";
import type { LogEntry, Store } from "@havn/store";
import type { LogSealer } from "../../log/log-sealer.js";
import { noJob } from "../jobs/routes.js";
import { registerRoute, routes } from "../route-table.js";

/** Entries per `GET /v1/log` page. */
const maxRange = 1_000;

export interface LogRouteDeps {
  readonly store: Store;
  readonly logSealer: LogSealer;
}

export function logEntryView(e: LogEntry): LogEntryView {
  const common = {
    seq: e.seq,
    job_id: e.jobId,
    prev_hash: e.prevHash,
    entry_hash: e.entryHash,
    created_at: e.createdAt,
  };
  return e.kind === "settlement"
    ? { ...common, kind: "settlement", settlement: e.settlement }
    : { ...common, kind: "receipt", receipt: e.receipt };
}

/** `?from=` and `?to=`: log positions. */
function positionOf(request: FastifyRequest, name: "from" | "to"): number | undefined {
  const raw = (request.query as Record<string, unknown>)[name];
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || !/^[0-9]{1,15}$/.test(raw))
    throw new HavnError("REQUEST_INVALID", `\`${name}\` is a log position: a decimal number from 1.`);
  return Number(raw);
}

/**
 * The execution log, for anyone to check: entries one by one or by range, the signed head,
 * inclusion proofs against sealed periods, and the key set they are all signed with. Public:
 * hashes, ids and counts, never a prompt or an output.
 */
export function registerLogRoutes(app: FastifyInstance, deps: LogRouteDeps): void {
  const { store, logSealer } = deps;

  const noEntry = (raw: Record<string, string>) =>
    new HavnError("LOG_ENTRY_NOT_FOUND", "The execution log has no entry at this position.", {
      context: { Seq: String(raw.seq).slice(0, 32) },
    });
  registerRoute<{ seq: number }>(
    app,
    routes.getLogEntry,
    async (_req, _reply, { seq }) => {
      const entry = await store.log.entry(seq);
      if (!entry) throw noEntry({ seq: String(seq) });
      return logEntryView(entry);
    },
    noEntry,
  );

  registerRoute(app, routes.logRange, async (request) => {
    const head = await logSealer.signedHead();
    const from = Math.max(1, positionOf(request, "from") ?? 1);
    const given = positionOf(request, "to");
    if (given !== undefined && given < from)
      throw new HavnError("REQUEST_INVALID", "`to` is before `from`.", { context: { From: from, To: given } });
    const asked = Math.min(given ?? head.seq, head.seq);
    const to = Math.min(asked, from + maxRange - 1);
    const entries = to >= from ? await store.log.range(from, to) : [];
    return {
      object: "log_range" as const,
      from,
      to,
      entries: entries.map(logEntryView),
      periods: to >= from ? await store.log.periods(from, to) : [],
      head,
      next_from: to < asked ? to + 1 : null,
    };
  });

  registerRoute(app, routes.logHead, async () => logSealer.signedHead());

  registerRoute<{ id: string }>(
    app,
    routes.logProof,
    async (_request, reply, { id }) => {
      const entry = await store.log.entryOfJob(id);
      if (!entry)
        throw new HavnError("LOG_ENTRY_NOT_FOUND", "This job has no log entry: it has not completed.", {
          context: { Job: id },
        });
      const period = await store.log.periodOf(entry.seq);
      if (!period) {
        const retryAfter = Math.max(1, Math.ceil(logSealer.periodMs / 1000));
        void reply.header("retry-after", String(retryAfter));
        throw new HavnError("LOG_PROOF_PENDING", "The job's entry is not in a sealed period yet.", {
          context: { Job: id, Seq: entry.seq },
        });
      }
      const hashes = await store.log.hashes(period.from, period.to);
      return {
        job_id: id,
        seq: entry.seq,
        entry_hash: entry.entryHash,
        period,
        path: inclusionPath(hashes, entry.seq - period.from),
      };
    },
    noJob,
  );

  registerRoute(app, routes.coordinatorKeys, async () => ({ object: "list" as const, data: await store.log.keys() }));
}
