import { Worker } from "node:worker_threads";
import { verifyMessage } from "@havn/protocol";

export interface SignatureCheck {
  readonly publicKey: string;
  /** The exact signed bytes (domain tag + canonical JSON). */
  readonly message: Uint8Array;
  readonly signature: string;
}

/** Verifies Ed25519 signatures, on worker threads when there are any. */
export interface SignatureVerifier {
  verify(check: SignatureCheck): Promise<boolean>;
  close(): Promise<void>;
}

/** Verifies on the calling thread: for `signatureWorkers: 0` and single-core hosts. */
export const inlineVerifier: SignatureVerifier = {
  verify: async (c) => verifyMessage(c.publicKey, c.message, c.signature),
  close: async () => {},
};

interface Pending {
  readonly check: SignatureCheck;
  readonly resolve: (ok: boolean) => void;
}

/**
 * Ed25519 verification costs ~110 µs per receipt on a slow core — the largest single cost of a
 * job on the coordinator. A pool of workers takes it off the event loop: checks arriving in the
 * same turn travel as one message, batches go round-robin, and the event loop keeps admitting,
 * dispatching and answering meanwhile.
 */
export function createSignatureVerifier(workers: number): SignatureVerifier {
  if (workers <= 0) return inlineVerifier;
  const pool = Array.from({ length: workers }, () => {
    const worker = new Worker(new URL("./signature-worker.mjs", import.meta.url));
    worker.unref();
    return worker;
  });
  const inFlight = new Map<number, Pending[]>();
  let nextId = 1;
  let next = 0;
  let pending: Pending[] = [];
  let scheduled = false;

  for (const worker of pool) {
    worker.on("message", (reply: { id: number; results: boolean[] }) => {
      const batch = inFlight.get(reply.id);
      inFlight.delete(reply.id);
      batch?.forEach((p, i) => p.resolve(reply.results[i] === true));
    });
    // A crashed worker must not leave callers waiting: verify its batches inline.
    worker.on("error", () => {
      for (const [id, batch] of inFlight) {
        inFlight.delete(id);
        for (const p of batch) void inlineVerifier.verify(p.check).then(p.resolve);
      }
    });
  }

  const flush = () => {
    scheduled = false;
    const batch = pending;
    pending = [];
    const id = nextId++;
    inFlight.set(id, batch);
    pool[next++ % pool.length]!.postMessage({ id, items: batch.map((p) => p.check) });
  };

  return {
    verify(check) {
      return new Promise((resolve) => {
        pending.push({ check, resolve });
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    async close() {
      await Promise.all(pool.map((w) => w.terminate()));
    },
  };
}
