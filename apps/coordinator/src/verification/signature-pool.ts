import { Worker } from "node:worker_threads";
import { signMessage, verifyMessage } from "@havn/protocol";

export interface SignatureCheck {
  readonly publicKey: string;
  /** The exact signed bytes (domain tag + canonical JSON). */
  readonly message: Uint8Array;
  readonly signature: string;
}

export interface SignatureRequest {
  /** The exact bytes to sign (domain tag + canonical JSON). */
  readonly message: Uint8Array;
  readonly secretKey: string;
}

/** Ed25519 verification and signing, on worker threads when there are any. */
export interface SignaturePool {
  verify(check: SignatureCheck): Promise<boolean>;
  sign(request: SignatureRequest): Promise<string>;
  close(): Promise<void>;
}

/** Works on the calling thread: for `signatureWorkers: 0` and single-core hosts. */
export const inlineSignatures: SignaturePool = {
  verify: async (c) => verifyMessage(c.publicKey, c.message, c.signature),
  sign: async (r) => signMessage(r.secretKey, r.message),
  close: async () => {},
};

/**
 * Batches smaller than this run on the calling thread. A worker round trip costs two thread
 * wake-ups; under moderate load (a few results per turn) those wake-ups, not the ~0.1 ms of
 * Ed25519 per task, set the latency: inline, a paced 64-client run's overhead p50 fell from
 * ~10 to ~7 ms (5 alternating trials). Full load brings larger batches, which still go out.
 */
const minOffload = 4;
/** Batches at least this large are split across the workers. */
const minSplit = 8;

type Task =
  | { readonly op: "verify"; readonly item: SignatureCheck; readonly resolve: (ok: boolean) => void }
  | {
      readonly op: "sign";
      readonly item: SignatureRequest;
      readonly resolve: (signature: string) => void;
      readonly reject: (err: unknown) => void;
    };

function runInline(task: Task): void {
  if (task.op === "verify") void inlineSignatures.verify(task.item).then(task.resolve);
  else inlineSignatures.sign(task.item).then(task.resolve, task.reject);
}

/**
 * Ed25519 costs ~110 µs per verification and ~45 µs per signature on a slow core: per job, the
 * node's receipt is verified and the coordinator co-signs it. A pool of workers takes both off
 * the event loop: tasks arriving in the same turn travel as one message, batches go
 * round-robin, and the event loop keeps admitting, dispatching and answering meanwhile. A task
 * that arrives with few others (a quiet coordinator) is done inline, where it is answered soonest.
 * `script` is the workers' code (tests give one that fails).
 */
export function createSignaturePool(
  workers: number,
  script: URL = new URL("./signature-worker.mjs", import.meta.url),
): SignaturePool {
  if (workers <= 0) return inlineSignatures;
  const pool = Array.from({ length: workers }, () => {
    const worker = new Worker(script);
    worker.unref();
    return worker;
  });
  const inFlight = new Map<number, { readonly worker: Worker; readonly batch: Task[] }>();
  let nextId = 1;
  let next = 0;
  let pending: Task[] = [];
  let scheduled = false;

  // A worker that dies (a crash, an exit) leaves the pool, and the batches it held run inline,
  // so no caller waits forever; with no worker left, everything runs inline.
  const retire = (worker: Worker) => {
    const at = pool.indexOf(worker);
    if (at < 0) return;
    pool.splice(at, 1);
    for (const [id, sent] of inFlight) {
      if (sent.worker !== worker) continue;
      inFlight.delete(id);
      sent.batch.forEach(runInline);
    }
  };
  for (const worker of pool) {
    worker.on("message", (reply: { id: number; results: (boolean | string | null)[] }) => {
      const sent = inFlight.get(reply.id);
      inFlight.delete(reply.id);
      sent?.batch.forEach((task, i) => {
        const result = reply.results[i];
        if (task.op === "verify") task.resolve(result === true);
        else if (typeof result === "string") task.resolve(result);
        else runInline(task); // the worker could not sign (a bad key): let the caller see why
      });
    });
    worker.on("error", () => retire(worker));
    worker.on("exit", () => retire(worker));
  }

  const send = (batch: Task[]) => {
    const id = nextId++;
    const worker = pool[next++ % pool.length]!;
    inFlight.set(id, { worker, batch });
    worker.postMessage({ id, items: batch.map((t) => ({ op: t.op, ...t.item })) });
  };
  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    // A few tasks are done here: handing them to a worker and back costs ~0.5 ms of wake-ups
    // on a small VM against ~0.1 ms of work each. Under load, tasks come in batches and go out.
    if (batch.length < minOffload || pool.length === 0) return batch.forEach(runInline);
    // A large batch is shared out so every worker takes a part.
    const parts = batch.length >= minSplit ? pool.length : 1;
    const size = Math.ceil(batch.length / parts);
    for (let i = 0; i < batch.length; i += size) send(batch.slice(i, i + size));
  };
  const enqueue = (task: Task) => {
    pending.push(task);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };

  return {
    verify: (item) => new Promise((resolve) => enqueue({ op: "verify", item, resolve })),
    sign: (item) => new Promise((resolve, reject) => enqueue({ op: "sign", item, resolve, reject })),
    async close() {
      await Promise.all([...pool].map((w) => w.terminate()));
    },
  };
}
