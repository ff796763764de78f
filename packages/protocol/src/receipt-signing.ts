import { canonicalJson } from "./canonical.js";
import type { CryptoSuite } from "./crypto/suite.js";
import type { CosignedReceipt, LogPosition, Receipt } from "./receipts.js";

export interface ReceiptVerification {
  /** The node's signature verifies with `receipt.node_key`. */
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

  const tools = {
    signReceipt: (receipt: Receipt, nodeSecretKey: string): string =>
      suite.signCanonical("receipt", canonicalReceipt(receipt), nodeSecretKey),
    /** The bytes a node's receipt signature covers (tag + canonical receipt). */
    receiptMessage: (receipt: Receipt): Uint8Array => suite.signedMessage("receipt", canonicalReceipt(receipt)),
    verifyNodeSignature: (receipt: Receipt, nodeSignature: string): boolean =>
      suite.verifyCanonical("receipt", canonicalReceipt(receipt), nodeSignature, receipt.node_key),
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
        node: tools.verifyNodeSignature(receipt, node_signature),
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
