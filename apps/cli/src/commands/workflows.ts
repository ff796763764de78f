import { readFileSync } from "node:fs";
import { formatHai, HavnError } from "@havn/protocol/core";
import type { ClientOptions } from "../credentials-file.js";
import { authedClient } from "../credentials-file.js";

/** `havn publish ./workflow.json`: publishes a workflow version; prints its id. */
export async function publish(file: string, o: ClientOptions & { json?: boolean }): Promise<void> {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new HavnError("CONFIG_INVALID", `Cannot read a workflow manifest from ${file}: ${(err as Error).message}`);
  }
  const w = await (await authedClient(o)).publishWorkflow(manifest);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(w, null, 2)}\n`);
    return;
  }
  const origin = w.origin === w.id ? "" : `, derived from ${w.origin}`;
  process.stdout.write(`published ${w.name}@${w.version} as ${w.id}${origin}\n`);
}

/** `havn workflows [--mine]`: published workflows, newest first. */
export async function workflows(o: ClientOptions & { mine?: boolean; json?: boolean }): Promise<void> {
  const list = await (await authedClient(o)).workflows({ mine: o.mine ?? false });
  if (o.json) {
    process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
    return;
  }
  if (list.length === 0) {
    process.stdout.write("no workflows\n");
    return;
  }
  for (const w of list) {
    const r = w.manifest.royalties as Record<string, number>;
    const split = `${r.creator}/${r.upstream}/${r.node}/${r.validators}/${r.treasury}`;
    process.stdout.write(
      `${w.id}  ${`${w.name}@${w.version}`.padEnd(32)} ${String(w.manifest.model).padEnd(16)} split ${split}` +
        `${w.flagged ? "  FLAGGED" : ""}\n`,
    );
  }
}

/** `havn earnings <workflow>`: "This workflow earned X HAI across Y runs" (seed 001). */
export async function earnings(ref: string, o: ClientOptions & { json?: boolean }): Promise<void> {
  const e = await (await authedClient(o)).workflowEarnings(ref);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(e, null, 2)}\n`);
    return;
  }
  process.stdout.write(
    `${e.workflow} earned ${formatHai(BigInt(e.earned_uhai))} HAI across ${e.runs} run${e.runs === 1 ? "" : "s"}` +
      ` (${formatHai(BigInt(e.direct_uhai))} from its own runs, ${formatHai(BigInt(e.upstream_uhai))} from workflows built on it)\n`,
  );
}
