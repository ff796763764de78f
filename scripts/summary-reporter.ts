import type { Reporter } from "vitest/reporters";

type Task = { type: string; mode?: string; result?: { state?: string }; tasks?: Task[] };

/** Prints the plain closing line `N passed, N failed, N skipped` after vitest's own summary. */
export default class SummaryReporter implements Reporter {
  onFinished(files: Task[] = [], errors: unknown[] = []): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const walk = (t: Task) => {
      if (t.type === "test") {
        if (t.mode === "skip" || t.mode === "todo") skipped++;
        else if (t.result?.state === "pass") passed++;
        else if (t.result?.state === "fail") failed++;
        else skipped++;
      }
      for (const c of t.tasks ?? []) walk(c);
    };
    for (const f of files) {
      walk(f);
      // A file that failed to load has no tests but is a failure.
      if (f.result?.state === "fail" && (f.tasks ?? []).length === 0) failed++;
    }
    failed += errors.length;
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
