import { generateKeyPair, signReceipt, type NodeMessageBody, type Receipt } from "@havn/protocol";
import type { NodeAgent } from "@havn/node-agent";

/**
 * How a hostile node misbehaves, for the adversarial routing suite (issue: "one bad node must not
 * hurt honest jobs"). Each rewrites what an honest agent sends:
 *
 * - `foreign-signature`: results signed with another key than the node's.
 * - `claims-other-key`: receipts that name another node (`victim`) as signer, signed by this one.
 * - `tampered`: receipts changed after signing.
 * - `lies-about-latency`: receipts claiming an hour of work, properly signed.
 * - `refuses`: every job answered with a non-retryable error.
 * - `black-hole`: heartbeats, and no answer to any job.
 * - `frozen`: nothing at all — no answers, no heartbeats — on an open connection (a stopped process).
 */
export const hostileBehaviours = [
  "foreign-signature",
  "claims-other-key",
  "tampered",
  "lies-about-latency",
  "refuses",
  "black-hole",
  "frozen",
] as const;
export type HostileBehaviour = (typeof hostileBehaviours)[number];

/** Makes a running agent hostile: what it sends about jobs is rewritten (or dropped) as `behaviour` says. */
export function makeHostile(agent: NodeAgent, behaviour: HostileBehaviour, victim?: string): void {
  const target = agent as unknown as { send(message: NodeMessageBody): void };
  const honest = target.send.bind(agent);
  const secret = agent.keys.secretKey;
  const stranger = generateKeyPair();
  target.send = (message: NodeMessageBody) => {
    if (message.type === "hello") return honest(message);
    if (behaviour === "frozen") return;
    if (message.type === "heartbeat") return honest(message);
    if (behaviour === "black-hole") return;
    if (behaviour === "refuses" && (message.type === "result" || message.type === "token")) {
      if (message.type === "token") return;
      return honest({
        type: "error",
        job_id: message.job_id,
        attempt_id: message.attempt_id,
        code: "REQUEST_INVALID",
        message: "I will not run this.",
        retryable: false,
      });
    }
    if (message.type !== "result") return honest(message);
    const r = message.receipt;
    const resign = (receipt: Receipt, key = secret) =>
      honest({ ...message, receipt, node_signature: signReceipt(receipt, key) });
    switch (behaviour) {
      case "foreign-signature":
        return resign(r, stranger.secretKey);
      case "claims-other-key": {
        const other = victim ?? stranger.publicKey;
        return resign(r.v === 2 ? { ...r, signer: { kind: "node", key: other }, node_id: other } : r);
      }
      case "tampered":
        return honest({ ...message, receipt: { ...r, latency_ms: r.latency_ms + 1 } });
      case "lies-about-latency":
        return resign({ ...r, latency_ms: 3_600_000 });
      default:
        return honest(message);
    }
  };
}
