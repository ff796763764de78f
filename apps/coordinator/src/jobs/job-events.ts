import type { JobRow } from "@havn/store";

export type JobEvent =
  | { readonly type: "dispatched"; readonly attemptId: string; readonly nodeKey: string }
  | { readonly type: "token"; readonly attemptId: string; readonly text: string }
  | { readonly type: "requeued"; readonly attemptId: string; readonly job: JobRow }
  | { readonly type: "completed"; readonly job: JobRow }
  | { readonly type: "failed"; readonly job: JobRow }
  | { readonly type: "cancelled"; readonly job: JobRow }
  /** The coordinator is stopping: waiters answer now; the job itself stays as it is. */
  | { readonly type: "shutdown" };

type Listener = (event: JobEvent) => void;

/** Told of every store transition this process makes (logs and metrics: `JobTelemetry`). */
export interface TransitionObserver {
  transitioned(job: JobRow, attemptId: string | null, node?: string): void;
}

/**
 * In-process fan-out of job events to the requests waiting on them (streams, long polls).
 * Listeners run synchronously; one that throws is logged and does not stop the others.
 */
export class JobEvents {
  private readonly listeners = new Map<string, Set<Listener>>();
  constructor(
    private readonly onListenerError: (err: unknown, jobId: string) => void,
    private readonly observer?: TransitionObserver,
  ) {}

  subscribe(jobId: string, listener: Listener): () => void {
    let set = this.listeners.get(jobId);
    if (!set) this.listeners.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(jobId) === set) this.listeners.delete(jobId);
    };
  }

  /** Jobs someone here is waiting on. */
  watched(): string[] {
    return [...this.listeners.keys()];
  }

  hasListeners(jobId: string): boolean {
    return this.listeners.has(jobId);
  }

  emit(jobId: string, event: JobEvent): void {
    const set = this.listeners.get(jobId);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err, jobId);
      }
    }
  }

  /** Tells every waiter the coordinator is stopping, so no request holds shutdown open. */
  shutdown(): void {
    for (const jobId of [...this.listeners.keys()]) this.emit(jobId, { type: "shutdown" });
  }

  /**
   * A store transition this process made: told to the observer (each is logged and counted once,
   * here), then to whoever waits on the job. `attemptId` is the attempt that ended, if one did;
   * `node` names the node it ran on, when known.
   */
  emitTransition(job: JobRow, attemptId: string | null, node?: string): void {
    this.observer?.transitioned(job, attemptId, node);
    this.announce(job, attemptId);
  }

  /**
   * A job that ended on another replica, read back from the database: whoever waits on it here
   * is answered. Not a transition of this process — that replica logs and counts it.
   */
  announceEnded(job: JobRow): void {
    this.announce(job, null);
  }

  /** Emits the event that matches a job's status. */
  private announce(job: JobRow, attemptId: string | null): void {
    if (job.status === "queued" && attemptId !== null) this.emit(job.id, { type: "requeued", attemptId, job });
    else if (job.status === "completed") this.emit(job.id, { type: "completed", job });
    else if (job.status === "failed") this.emit(job.id, { type: "failed", job });
    else if (job.status === "cancelled") this.emit(job.id, { type: "cancelled", job });
  }
}
