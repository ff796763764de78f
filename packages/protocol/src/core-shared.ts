// Everything zod-free that is the same in the Node and browser entries (`@havn/protocol/core`).
export { canonicalBytes, canonicalJson, utf8 } from "./canonical.js";
export { fromBase64Url, fromHex, toBase64Url, toHex } from "./encoding.js";
export { errorCatalog, HavnError, isErrorCode } from "./errors.js";
export type { ErrorBody, ErrorCode, ErrorSpec } from "./errors.js";
export { jobIdPattern, requestIdPattern } from "./ids.js";
export { domainTag, signatureDomains } from "./crypto/suite.js";
export type { CryptoSuite, KeyPair, SignatureDomain } from "./crypto/suite.js";
export type { ReceiptVerification } from "./receipt-signing.js";
export type {
  CoordinatorKeyView,
  CosignedSettlement,
  KeyCertificate,
  KeySetCheck,
  LogBundle,
  LogCheck,
  LogEntryView,
  LogInclusionProof,
  SignedLogHead,
  SignedLogPeriod,
  SettlementRecord,
} from "./log-proofs.js";
export { checksumAddress, evmAddressPattern } from "./wallets.js";
export { formatHai, microHaiPerHai, parseHai } from "./money.js";
