import type { CompleteJobInput, CompleteJobResult, SealReceipt, Store } from "@havn/store";

interface Pending {
  readonly input: CompleteJobInput;
  readonly resolve: (result: CompleteJobResult) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Collects verified results and completes them in batches: one transaction — and one lock of
 * the execution log's head — per batch instead of per job. Results that arrive in the same turn
 * of the event loop share a batch; a batch in flight does not hold up the next one's collection.
 */
export class CompletionBatcher {
  private pending: Pending[] = [];
  private scheduled = false;
  private flushing = false;

  constructor(
    private readonly store: Store,
    private readonly seal: SealReceipt,
    private readonly batchSize: number,
  ) {}

  complete(input: CompleteJobInput): Promise<CompleteJobResult> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      this.schedule();
    });
  }

  private schedule() {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  private async flush() {
    if (this.flushing || this.pending.length === 0) return;
    this.flushing = true;
    const batch = this.pending.splice(0, this.batchSize);
    try {
      const results = await this.store.completeJobs(
        batch.map((p) => p.input),
        this.seal,
      );
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    } finally {
      this.flushing = false;
      if (this.pending.length > 0) this.schedule();
    }
  }

  /** Waits until everything handed in so far is written. */
  async drain(): Promise<void> {
    while (this.pending.length > 0 || this.flushing || this.scheduled) {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}
