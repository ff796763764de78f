import type { Logger } from "pino";

/** Redraws at most this often on a terminal: a 40 GB file reports thousands of chunks. */
const redrawMs = 100;

/**
 * Shows how far a slow stage (hashing a large GGUF, loading it) has come. On a terminal, one line
 * on stderr redrawn in place; otherwise (a service, a pipe) one log line when each stage starts
 * and one when it ends, so logs never fill with percentages.
 */
export class Progress {
  private stage: string | undefined;
  private startedAt = 0;
  private drawnAt = 0;
  private readonly tty: boolean;

  constructor(
    private readonly log: Logger,
    private readonly subject: string,
    stream: NodeJS.WriteStream = process.stderr,
    private readonly write: (text: string) => void = (t) => void stream.write(t),
  ) {
    this.tty = stream.isTTY === true;
  }

  /** Reports that `stage` has reached `fraction` (0–1); a new stage ends the previous one. */
  update(stage: string, fraction: number): void {
    const now = performance.now();
    if (stage !== this.stage) {
      this.end();
      this.stage = stage;
      this.startedAt = now;
      this.drawnAt = 0;
      if (!this.tty) this.log.info({ stage, subject: this.subject }, `${stage} ${this.subject}`);
    }
    if (this.tty && (now - this.drawnAt >= redrawMs || fraction >= 1)) {
      this.drawnAt = now;
      const width = 24;
      const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width);
      const bar = `${"#".repeat(filled)}${"-".repeat(width - filled)}`;
      this.write(`\r${stage} ${this.subject} [${bar}] ${(fraction * 100).toFixed(0).padStart(3)}%`);
    }
    if (fraction >= 1) this.end();
  }

  /** Ends the current stage, if any. */
  end(): void {
    if (this.stage === undefined) return;
    const seconds = ((performance.now() - this.startedAt) / 1000).toFixed(1);
    if (this.tty) this.write(`\r\x1b[2K${this.stage} ${this.subject}: done in ${seconds} s\n`);
    else this.log.info({ stage: this.stage, subject: this.subject, seconds: Number(seconds) }, `${this.stage} done`);
    this.stage = undefined;
  }
}
