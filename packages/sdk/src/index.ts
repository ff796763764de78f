export { HavnClient } from "./client.js";
export type {
  Account,
  ApiKey,
  Balance,
  ChatOptions,
  ChatResult,
  HavnClientOptions,
  Health,
  JobMoneyView,
  JobView,
  LedgerTransaction,
  Me,
  ReceiptCheck,
  Session,
} from "./client.js";
