import { readFileSync, writeFileSync } from "node:fs";
import {
  checkKeySet,
  HavnError,
  verifyInclusionProof,
  verifyLogRange,
  type LogBundle,
  type LogEntryView,
  type LogInclusionProof,
  type SignedLogPeriod,
} from "@havn/protocol/core";
import { authedClient } from "../credentials-file.js";

/** A log range as `havn log verify --save` writes it: everything needed to check it offline. */
interface SavedBundle extends LogBundle {
  readonly proof?: LogInclusionProof;
}

/** Fetches `from`..`to` page by page, with the periods, the signed head and the key set. */
async function fetchBundle(
  o: { coordinator: string; apiKey?: string; from?: number; to?: number; job?: string },
  log: (line: string) => void,
): Promise<SavedBundle> {
  const client = await authedClient(o);
  const keys = await client.coordinatorKeys();
  const from = o.from ?? 1;
  const entries: LogEntryView[] = [];
  const periods = new Map<number, SignedLogPeriod>();
  let page = await client.logRange(from, o.to);
  const head = page.head;
  const to = Math.min(o.to ?? head.seq, head.seq);
  for (;;) {
    entries.push(...page.entries);
    for (const p of page.periods) periods.set(p.from, p);
    if (page.next_from === null || page.next_from > to) break;
    log(`fetched #${from}–#${page.to}…`);
    page = await client.logRange(page.next_from, to);
  }
  const proof = o.job ? await client.logProof(o.job) : undefined;
  return {
    from,
    to,
    entries,
    periods: [...periods.values()].sort((a, b) => a.from - b.from),
    keys,
    head,
    ...(proof && { proof }),
  };
}

/**
 * `havn log verify`: checks a range of the execution log — every entry's hash, signatures and
 * link, every sealed period's signed Merkle root, the signed head, and (`--job`) a job's
 * inclusion proof inside the range — against the network's key set. `--save` keeps what was
 * fetched; `--file` checks a saved range with no network at all. Exit code 0 only if all holds.
 */
export async function logVerify(o: {
  coordinator: string;
  apiKey?: string;
  from?: number;
  to?: number;
  job?: string;
  save?: string;
  file?: string;
  coordinatorKey?: readonly string[];
  json: boolean;
}): Promise<void> {
  const progress = (line: string) => {
    if (!o.json && process.stderr.isTTY) process.stderr.write(`${line}\r`);
  };
  let bundle: SavedBundle;
  if (o.file) {
    try {
      bundle = JSON.parse(readFileSync(o.file, "utf8")) as SavedBundle;
    } catch (err) {
      throw new HavnError("CONFIG_INVALID", `Cannot read a saved log range from ${o.file}: ${(err as Error).message}`);
    }
  } else {
    bundle = await fetchBundle(o, progress);
    if (o.save) writeFileSync(o.save, `${JSON.stringify(bundle)}\n`);
  }
  const range = { from: bundle.from, to: bundle.to };
  // Pinned keys: the key set must hold them, and only keys that chain to them are trusted.
  const pinned = o.coordinatorKey ?? [];
  const check = verifyLogRange(bundle, pinned);
  const problems = [...check.problems];
  if (bundle.proof) {
    if (o.job && bundle.proof.job_id !== o.job)
      problems.push(`The proof is for ${bundle.proof.job_id}, not the job asked for (${o.job}).`);
    problems.push(
      ...verifyInclusionProof(bundle.proof, checkKeySet(bundle.keys, pinned).trusted, {
        ...range,
        entries: bundle.entries,
        periods: bundle.periods,
      }),
    );
  }
  const ok = problems.length === 0;
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          verified: ok,
          from: range.from,
          to: range.to,
          entries: check.entries,
          periods_checked: check.periods,
          head: bundle.head?.seq ?? null,
          keys: bundle.keys.length,
          ...(bundle.proof && { job: bundle.proof.job_id, job_seq: bundle.proof.seq }),
          problems,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const span = check.entries === 0 ? "no entries" : `#${range.from}–#${range.to}: ${check.entries} entries`;
    const lines = [
      `log ${span}, ${check.periods} sealed period${check.periods === 1 ? "" : "s"} checked, signed head #${bundle.head?.seq ?? "?"}, ${bundle.keys.length} key${bundle.keys.length === 1 ? "" : "s"}`,
      ...(bundle.proof ? [`job ${bundle.proof.job_id} at #${bundle.proof.seq}`] : []),
      ...problems.map((p) => `FAILED: ${p}`),
      ok ? "verified" : `${problems.length} problem${problems.length === 1 ? "" : "s"}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  if (!ok) process.exitCode = 1;
}
