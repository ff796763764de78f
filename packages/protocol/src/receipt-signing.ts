import { canonicalJson } from "./canonical.js";
import type { CryptoSuite } from "./crypto/suite.js";
import { fromBase64Url } from "./encoding.js";
import type { CosignedReceipt, LogPosition, Receipt } from "./receipts.js";

export interface ReceiptVerification {
  /**
   * The receipt's signature verifies with its signer's key: the node's (`node_key` in version 1,
   * `signer.key` in version 2), or, for a version 2 receipt the coordinator signed on behalf of a
   * keyless node, the coordinator key its `signer.key_id` names.
   */
  readonly node: boolean;
  /** The coordinator's co-signature verifies with `coordinator_key` (and the expected key, if given). */
  readonly coordinator: boolean;
  /** `log.entry_hash` is the hash of `prev_hash` and this receipt. */
  readonly chain: boolean;
}

export function createReceiptSigning(suite: CryptoSuite) {
  // A receipt is canonicalised once and its text reused by every signature and hash over it
  // (verify, log link, co-signature): three serialisations saved per job on the coordinator.
  // Receipts are never mutated after they are parsed or built.
  const canonicalReceipts = new WeakMap<Receipt, string>();
  const canonicalReceipt = (receipt: Receipt): string => {
    let text = canonicalReceipts.get(receipt);
    if (text === undefined) {
      text = canonicalJson(receipt);
      canonicalReceipts.set(receipt, text);
    }
    return text;
  };
  // RFC 8785 orders keys by UTF-16 code units: "log" < "node_signature" < "receipt". Signatures
  // are base64url, which JSON.stringify writes exactly as JCS does.
  const withSignature = (receipt: Receipt, nodeSignature: string) =>
    `{"node_signature":${JSON.stringify(nodeSignature)},"receipt":${canonicalReceipt(receipt)}}`;
  const cosignText = (receipt: Receipt, nodeSignature: string, log: LogPosition) =>
    `{"log":${canonicalJson(log)},"node_signature":${JSON.stringify(nodeSignature)},"receipt":${canonicalReceipt(receipt)}}`;

  /** What a node key looks like (base64url of 32 bytes): a keyless node's id never does. */
  const nodeKeyShape = /^[A-Za-z0-9_-]{43}$/;
  /** The key id of a public key (as `GET /v1/keys` lists it). */
  const keyIdOf = (publicKey: string) => suite.sha256Hex(fromBase64Url(publicKey)).slice(0, 16);

  const tools = {
    /**
     * The public key a receipt's signature must verify with: the node's own, or — for a version 2
     * receipt signed by the coordinator — `coordinatorKey` when its key id is the one the receipt
     * names. Undefined when the receipt names a key that is not at hand.
     */
    receiptSignerKey(receipt: Receipt, coordinatorKey?: string): string | undefined {
      if (receipt.v === 1) return receipt.node_key;
      if (receipt.signer.kind === "node")
        return receipt.signer.key === receipt.node_id ? receipt.signer.key : undefined;
      // The coordinator signs only for a node without a key: a receipt it signed "for" a keyed
      // node would put words in that node's mouth, so it never verifies.
      if (nodeKeyShape.test(receipt.node_id)) return undefined;
      return coordinatorKey !== undefined && keyIdOf(coordinatorKey) === receipt.signer.key_id
        ? coordinatorKey
        : undefined;
    },
    /** The node a receipt is for: `node_key` in version 1, `node_id` in version 2. */
    receiptNode: (receipt: Receipt): string => (receipt.v === 1 ? receipt.node_key : receipt.node_id),
    /** A receipt's workflow id (either version). */
    receiptWorkflow: (receipt: Receipt): string | null =>
      receipt.v === 1 ? receipt.workflow_id : (receipt.workflow?.id ?? null),
    /** A version 2 receipt's input commitment: SHA-256 of canonical `{input, salt}`, hex. */
    inputCommitment: (input: unknown, salt: string): string => suite.hashCanonical({ input, salt }),
    /** A version 2 receipt's `output_token_ids_hash`: SHA-256 of the ids as a canonical JSON array. */
    tokenIdsHash: (ids: readonly number[]): string => suite.hashCanonical(ids),
    signReceipt: (receipt: Receipt, nodeSecretKey: string): string =>
      suite.signCanonical("receipt", canonicalReceipt(receipt), nodeSecretKey),
    /** The bytes a node's receipt signature covers (tag + canonical receipt). */
    receiptMessage: (receipt: Receipt): Uint8Array => suite.signedMessage("receipt", canonicalReceipt(receipt)),
    /** Whether `signature` over the receipt verifies with its signer's key (see `receiptSignerKey`). */
    verifyNodeSignature(receipt: Receipt, nodeSignature: string, coordinatorKey?: string): boolean {
      const key = tools.receiptSignerKey(receipt, coordinatorKey);
      return key !== undefined && suite.verifyCanonical("receipt", canonicalReceipt(receipt), nodeSignature, key);
    },
    /** The execution log's chain link: each entry commits to the one before it. */
    logEntryHash: (prevHash: string, receipt: Receipt, nodeSignature: string): string =>
      suite.sha256Hex(`${prevHash}\n${suite.sha256Hex(withSignature(receipt, nodeSignature))}`),
    /** The bytes the coordinator's co-signature covers (tag + receipt, node signature, log position). */
    cosignMessage: (receipt: Receipt, nodeSignature: string, log: LogPosition): Uint8Array =>
      suite.signedMessage("receipt-cosign", cosignText(receipt, nodeSignature, log)),
    /** The co-signed receipt, given a co-signature over `cosignMessage` made elsewhere (a worker). */
    cosignedReceipt: (
      receipt: Receipt,
      nodeSignature: string,
      log: LogPosition,
      coordinatorKey: string,
      coordinatorSignature: string,
    ): CosignedReceipt => ({
      receipt,
      node_signature: nodeSignature,
      log,
      coordinator_key: coordinatorKey,
      coordinator_signature: coordinatorSignature,
    }),
    cosignReceipt: (
      receipt: Receipt,
      nodeSignature: string,
      log: LogPosition,
      coordinator: { publicKey: string; secretKey: string },
    ): CosignedReceipt =>
      tools.cosignedReceipt(
        receipt,
        nodeSignature,
        log,
        coordinator.publicKey,
        suite.signMessage(coordinator.secretKey, tools.cosignMessage(receipt, nodeSignature, log)),
      ),
    verifyCosignedReceipt(bundle: CosignedReceipt, expectedCoordinatorKey?: string): ReceiptVerification {
      const { receipt, node_signature, log } = bundle;
      const keyMatches = expectedCoordinatorKey === undefined || expectedCoordinatorKey === bundle.coordinator_key;
      return {
        node: tools.verifyNodeSignature(receipt, node_signature, bundle.coordinator_key),
        coordinator:
          keyMatches &&
          suite.verifyCanonical(
            "receipt-cosign",
            cosignText(receipt, node_signature, log),
            bundle.coordinator_signature,
            bundle.coordinator_key,
          ),
        chain: tools.logEntryHash(log.prev_hash, receipt, node_signature) === log.entry_hash,
      };
    },
  };
  return tools;
}
