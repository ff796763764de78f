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
  const tools = {
    signReceipt: (receipt: Receipt, nodeSecretKey: string): string => suite.sign("receipt", receipt, nodeSecretKey),
    verifyNodeSignature: (receipt: Receipt, nodeSignature: string): boolean =>
      suite.verify("receipt", receipt, nodeSignature, receipt.node_key),
    /** The execution log's chain link: each entry commits to the one before it. */
    logEntryHash: (prevHash: string, receipt: Receipt, nodeSignature: string): string =>
      suite.sha256Hex(`${prevHash}\n${suite.hashCanonical({ receipt, node_signature: nodeSignature })}`),
    cosignReceipt(
      receipt: Receipt,
      nodeSignature: string,
      log: LogPosition,
      coordinator: { publicKey: string; secretKey: string },
    ): CosignedReceipt {
      const payload = { receipt, node_signature: nodeSignature, log };
      return {
        ...payload,
        coordinator_key: coordinator.publicKey,
        coordinator_signature: suite.sign("receipt-cosign", payload, coordinator.secretKey),
      };
    },
    verifyCosignedReceipt(bundle: CosignedReceipt, expectedCoordinatorKey?: string): ReceiptVerification {
      const { receipt, node_signature, log } = bundle;
      const keyMatches = expectedCoordinatorKey === undefined || expectedCoordinatorKey === bundle.coordinator_key;
      return {
        node: tools.verifyNodeSignature(receipt, node_signature),
        coordinator:
          keyMatches &&
          suite.verify(
            "receipt-cosign",
            { receipt, node_signature, log },
            bundle.coordinator_signature,
            bundle.coordinator_key,
          ),
        chain: tools.logEntryHash(log.prev_hash, receipt, node_signature) === log.entry_hash,
      };
    },
  };
  return tools;
}
