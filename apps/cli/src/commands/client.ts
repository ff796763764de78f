import { authedClient } from "../credentials-file.js";

/** How long `havn ask` waits for the first token before saying that the job is queued. */
const queuedNoticeMs = 1_000;

/**
 * `havn ask`: streams the answer to stdout, then `job: <id>`. If no text comes within a second,
 * says on stderr that the job waits for a node, and for which model, so a quiet network does not
 * look like a hang.
 */
export async function ask(
  prompt: string,
  o: {
    coordinator: string;
    model: string;
    maxTokens?: number;
    seed?: number;
    temperature?: number;
    workflow?: string;
    apiKey?: string;
  },
): Promise<void> {
  const client = await authedClient(o);
  let model: string | undefined;
  let texted = false;
  const notice = setTimeout(() => {
    if (!texted)
      process.stderr.write(
        model === undefined
          ? `waiting for the coordinator at ${o.coordinator}…\n`
          : `queued — waiting for a node for model ${model}\n`,
      );
  }, queuedNoticeMs);
  try {
    const result = await client.chat(prompt, {
      model: o.model,
      maxTokens: o.maxTokens,
      seed: o.seed,
      temperature: o.temperature,
      ...(o.workflow !== undefined && { workflow: o.workflow }),
      onAdmitted: (job) => (model = job.model),
      onText: (t) => {
        texted = true;
        process.stdout.write(t);
      },
    });
    process.stdout.write(`\njob: ${result.jobId}\n`);
  } finally {
    clearTimeout(notice);
  }
}

const mark = (ok: boolean) => (ok ? "verified" : "FAILED");

/**
 * `havn receipt`: prints a job's receipt and checks it — the node's signature, the coordinator's
 * co-signature (by a key of the network's key set valid when it signed, or `--coordinator-key`),
 * the receipt's link hash, the log's own entry and its link to the one before, the output's
 * content id, and the entry's inclusion proof under its sealed period. Exit code 0 only if every
 * check passes (a period not sealed yet is reported, and is no failure).
 */
export async function receipt(
  jobId: string,
  o: { coordinator: string; json: boolean; coordinatorKey?: string; apiKey?: string },
): Promise<void> {
  const client = await authedClient(o);
  const check = await client.verifyReceipt(jobId, o.coordinatorKey);
  const r = check.job.receipt!;
  const ok = check.problems.length === 0;
  if (o.json) {
    const checks = {
      node: check.node,
      coordinator: check.coordinator,
      chain: check.chain,
      logged: check.logged,
      output: check.output,
      inclusion: check.inclusion,
    };
    process.stdout.write(
      `${JSON.stringify({ job_id: jobId, verified: ok, checks, problems: check.problems, receipt: r }, null, 2)}\n`,
    );
  } else {
    const x = r.receipt;
    const inclusion = check.inclusion === "pending" ? "pending (its period is not sealed yet)" : mark(check.inclusion);
    process.stdout.write(
      [
        `job          ${x.job_id} (attempt ${x.attempt_id})`,
        `model        ${x.model}  sha256:${x.model_hash.slice(0, 16)}…  backend ${x.backend}`,
        `output       ${x.outputs_cid}  (${check.output ? "matches the stored output" : "DOES NOT match the stored output"})`,
        `tokens       ${x.tokens.prompt} prompt, ${x.tokens.completion} completion   latency ${x.latency_ms} ms   energy ~${x.energy_estimate} J`,
        ...(x.v === 1
          ? [`node         ${x.node_key}  signature ${mark(check.node)}   (receipt version 1)`]
          : [
              `input        committed ${x.input_commitment.slice(0, 16)}… (salted)   sampling temperature ${x.sampling.temperature}, seed ${x.sampling.seed}`,
              `workflow     ${x.workflow ? `${x.workflow.id} v${x.workflow.version}` : "none"}   model from ${x.model_source.kind} ${x.model_source.ref}`,
              `node         ${x.node_id}  signed by ${x.signer.kind === "node" ? "the node" : `the coordinator (key ${x.signer.key_id}) for it`}: ${mark(check.node)}`,
            ]),
        `coordinator  ${r.coordinator_key}  co-signature ${mark(check.coordinator)}`,
        `log          #${r.log.seq}  entry ${r.log.entry_hash.slice(0, 16)}…  chain link ${mark(check.chain && check.logged)}  inclusion ${inclusion}`,
        ...check.problems.map((p) => `problem      ${p}`),
        "",
      ].join("\n"),
    );
  }
  if (!ok) process.exitCode = 1;
}
