import { HavnClient } from "@havn/sdk";

/** `havn ask`: streams the answer to stdout, then `job: <id>`. */
export async function ask(
  prompt: string,
  o: { coordinator: string; model: string; maxTokens?: number; seed?: number; temperature?: number; apiKey?: string },
): Promise<void> {
  const client = new HavnClient({ baseUrl: o.coordinator, apiKey: o.apiKey });
  const result = await client.chat(prompt, {
    model: o.model,
    maxTokens: o.maxTokens,
    seed: o.seed,
    temperature: o.temperature,
    onText: (t) => process.stdout.write(t),
  });
  process.stdout.write(`\njob: ${result.jobId}\n`);
}

const mark = (ok: boolean) => (ok ? "verified" : "FAILED");

/** `havn receipt`: prints a job's receipt and verifies it; exit code 0 only if both signatures verify. */
export async function receipt(
  jobId: string,
  o: { coordinator: string; json: boolean; coordinatorKey?: string },
): Promise<void> {
  const client = new HavnClient({ baseUrl: o.coordinator });
  const check = await client.verifyReceipt(jobId, o.coordinatorKey);
  const r = check.job.receipt!;
  const ok = check.node && check.coordinator;
  if (o.json) {
    process.stdout.write(
      `${JSON.stringify({ job_id: jobId, verified: ok, checks: { node: check.node, coordinator: check.coordinator, chain: check.chain, output: check.output }, receipt: r }, null, 2)}\n`,
    );
  } else {
    const x = r.receipt;
    process.stdout.write(
      [
        `job          ${x.job_id} (attempt ${x.attempt_id})`,
        `model        ${x.model}  sha256:${x.model_hash.slice(0, 16)}…  backend ${x.backend}`,
        `output       ${x.outputs_cid}  (${check.output ? "matches the stored output" : "DOES NOT match the stored output"})`,
        `tokens       ${x.tokens.prompt} prompt, ${x.tokens.completion} completion   latency ${x.latency_ms} ms   energy ~${x.energy_estimate} J`,
        `node         ${x.node_key}  signature ${mark(check.node)}`,
        `coordinator  ${r.coordinator_key}  co-signature ${mark(check.coordinator)}`,
        `log          #${r.log.seq}  entry ${r.log.entry_hash.slice(0, 16)}…  chain link ${mark(check.chain)}`,
        "",
      ].join("\n"),
    );
  }
  if (!ok) process.exitCode = 1;
}
