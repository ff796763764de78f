import type { FastifyBaseLogger } from "fastify";
import type { JobSpec } from "@havn/protocol";
import type { JobRow } from "@havn/store";
import type { SettlementEvent } from "../ledger/settlement.js";
import type { CoordinatorMetrics } from "./metrics.js";

/** Milliseconds between two epoch times, never negative (clocks of replicas may disagree). */
const since = (from: number, to: number) => Math.max(0, to - from);

/** The correlation fields of every job line: the job id, and the client's request id when it sent one. */
const correlation = (jobId: string, requestId: string | null | undefined) =>
  requestId ? { job: jobId, request_id: requestId } : { job: jobId };

/**
 * One job's story in logs and metrics, told from the places where it happens: admitted, placed on
 * a node, started (first token), and every store transition this process makes — completed,
 * failed, cancelled, or back in the queue for another attempt. Every line carries the job id and,
 * when the client sent one, its `x-request-id` (`request_id`): the correlation id a node logs too.
 * Prompts and outputs are never logged.
 *
 * Each job is counted once when admitted and once when it ends, here and nowhere else, so
 * `/metrics` agrees with the database. Jobs that ended on another replica are that replica's to
 * count (they reach this process as read-backs, not transitions).
 */
export class JobTelemetry {
  constructor(
    private readonly log: FastifyBaseLogger,
    private readonly metrics: CoordinatorMetrics,
  ) {}

  /**
   * The job's row is written; `node` names the node it was placed on in that transaction, if any.
   * At debug: at `info` a coordinator writes one line per job, when it ends — a second line per job
   * cost ~8% of throughput (SQLite, 1,620 vs 1,855 jobs/s for two lines against none; one line:
   * 0.92–0.96 of none, `npm run bench -- logging`).
   */
  admitted(job: JobRow, node: string | null): void {
    this.metrics.admitted.inc({ model: job.model });
    if (job.money) this.metrics.money.inc({ what: "escrowed" }, Number(job.money.escrow));
    this.log.debug(
      { ...correlation(job.id, job.requestId), model: job.model, stream: job.stream, placed: node },
      "job admitted",
    );
  }

  /**
   * An attempt was sent to a node, at admission or from the queue. `queuedSince` is when the job
   * last entered the queue (admission, or the end of its previous attempt).
   */
  placed(spec: JobSpec, node: string, queuedSince: number, now: number): void {
    const waitedMs = since(queuedSince, now);
    this.metrics.queueWait.observe({ model: spec.model }, waitedMs / 1000);
    this.log.debug(
      { ...correlation(spec.job_id, spec.request_id), attempt: spec.attempt_id, node, queue_ms: waitedMs },
      "job placed",
    );
  }

  /** The node sent the first token or progress of an attempt of a job admitted at `admittedAt`. */
  started(spec: JobSpec, node: string, admittedAt: number, now: number): void {
    const ttftMs = since(admittedAt, now);
    this.metrics.timeToFirstToken.observe({ model: spec.model }, ttftMs / 1000);
    this.log.debug(
      { ...correlation(spec.job_id, spec.request_id), attempt: spec.attempt_id, node, ttft_ms: ttftMs },
      "job started",
    );
  }

  /** A job's money at the end of a transition: charged (and the rest released), or refunded. */
  private moneyMoved(job: JobRow): void {
    const m = job.money;
    if (!m) return;
    if (m.state === "charged" && m.charge !== null) {
      this.metrics.money.inc({ what: "charged" }, Number(m.charge));
      this.metrics.money.inc({ what: "released" }, Number(m.escrow - m.charge));
    } else if (m.state === "refunded") this.metrics.money.inc({ what: "refunded" }, Number(m.escrow));
  }

  /** Settlement moved money: a charge split, a reward minted, a charge held, a held charge refunded. */
  settlement(what: SettlementEvent, amount: bigint): void {
    this.metrics.money.inc({ what }, Number(amount));
  }

  /** An attempt ended on its node: with a result (`completed`) or an error's catalog code. */
  attemptEnded(model: string, outcome: string, durationMs: number, completionTokens?: number): void {
    const seconds = durationMs / 1000;
    this.metrics.attemptDuration.observe({ model, outcome }, seconds);
    if (completionTokens !== undefined && seconds > 0)
      this.metrics.tokensPerSecond.observe({ model }, completionTokens / seconds);
  }

  /**
   * A store transition this process made. `attemptId` is the attempt that ended, when one did;
   * `node` the name of the node it ran on, when known.
   */
  transitioned(job: JobRow, attemptId: string | null, node?: string): void {
    const now = job.updatedAt;
    // Its money, where it moved in this transition: the charge, or the refund (µHAI, exact).
    const money =
      job.money?.state === "charged"
        ? { charge_uhai: job.money.charge?.toString(), payer: job.money.payer }
        : job.money?.state === "refunded"
          ? { refund_uhai: job.money.escrow.toString(), payer: job.money.payer }
          : {};
    const base = { ...correlation(job.id, job.requestId), model: job.model, attempts: job.attempts, ...money };
    const nodeName = node ?? null;
    this.moneyMoved(job);
    switch (job.status) {
      case "queued": {
        if (attemptId === null) return;
        const reason = job.error?.code ?? "unknown";
        this.metrics.retried.inc({ model: job.model, reason });
        this.log.info(
          { ...base, attempt: attemptId, node: nodeName, code: reason, reason: job.error?.message },
          "job retried on another attempt",
        );
        return;
      }
      case "completed": {
        const durationMs = since(job.createdAt, job.finishedAt ?? now);
        const usage = job.output?.usage;
        this.metrics.completed.inc({ model: job.model });
        this.metrics.jobDuration.observe({ model: job.model, outcome: "completed" }, durationMs / 1000);
        this.log.info(
          {
            ...base,
            attempt: attemptId,
            node: nodeName,
            duration_ms: durationMs,
            node_ms: job.receipt?.receipt.latency_ms,
            prompt_tokens: usage?.prompt_tokens,
            completion_tokens: usage?.completion_tokens,
          },
          "job completed",
        );
        return;
      }
      case "failed": {
        const durationMs = since(job.createdAt, job.finishedAt ?? now);
        const reason = job.error?.code ?? "unknown";
        this.metrics.failed.inc({ model: job.model, reason });
        this.metrics.jobDuration.observe({ model: job.model, outcome: "failed" }, durationMs / 1000);
        this.log.warn(
          {
            ...base,
            attempt: attemptId,
            node: nodeName,
            duration_ms: durationMs,
            code: reason,
            reason: job.error?.message,
          },
          "job failed",
        );
        return;
      }
      case "cancelled": {
        const durationMs = since(job.createdAt, job.finishedAt ?? now);
        this.metrics.cancelled.inc({ model: job.model });
        this.metrics.jobDuration.observe({ model: job.model, outcome: "cancelled" }, durationMs / 1000);
        this.log.info({ ...base, duration_ms: durationMs }, "job cancelled");
        return;
      }
      default:
        return;
    }
  }
}
