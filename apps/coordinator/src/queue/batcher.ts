interface Pending<I, O> {
  readonly item: I;
  readonly resolve: (result: O) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Groups writes that arrive in the same turn of the event loop into one call — one transaction
 * (one WAL commit on SQLite, one round trip on PostgreSQL) for many jobs. A batch in flight does
 * not hold up collecting the next one. Each caller still waits for its own write: nothing is
 * acknowledged before it is stored.
 */
export class Batcher<I, O> {
  private pending: Pending<I, O>[] = [];
  private scheduled = false;
  private flushing = false;

  constructor(
    private readonly run: (items: I[]) => Promise<readonly O[]>,
    private readonly batchSize: number,
  ) {}

  add(item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
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
      const results = await this.run(batch.map((p) => p.item));
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
