// Node.js core entry (`@havn/protocol/core`): no zod; primitives from node:crypto (OpenSSL).
import { nodeCrypto } from "./crypto/node.js";
import { createCryptoSuite } from "./crypto/suite.js";
import { makeIdFactory } from "./ids.js";
import { createLogProofs } from "./log-proofs.js";
import { createReceiptSigning } from "./receipt-signing.js";

export * from "./core-shared.js";

const suite = createCryptoSuite(nodeCrypto);
const receipts = createReceiptSigning(suite);
const ids = makeIdFactory(suite.randomHex);

export const {
  sha256,
  sha256Hex,
  hashCanonical,
  contentId,
  generateKeyPair,
  keyPairFromSecret,
  sign,
  verify,
  verifyMessage,
  signMessage,
  randomHex,
} = suite;
export const {
  signReceipt,
  receiptMessage,
  verifyNodeSignature,
  logEntryHash,
  cosignMessage,
  cosignedReceipt,
  cosignReceipt,
  verifyCosignedReceipt,
  receiptSignerKey,
  receiptNode,
  receiptWorkflow,
  inputCommitment,
  tokenIdsHash,
} = receipts;
export const {
  keyId,
  merkleRoot,
  inclusionPath,
  verifyInclusion,
  signLogHead,
  verifyLogHead,
  signLogPeriod,
  verifyLogPeriod,
  keyAt,
  certifyKey,
  verifyKeyCertificate,
  activateKey,
  verifyKeyActivation,
  checkKeySet,
  verifyLogRange,
  verifyInclusionProof,
  settlementEntryHash,
  signSettlement,
  verifySettlement,
} = createLogProofs(suite, receipts);
export const { jobId: newJobId, attemptId: newAttemptId } = ids;
