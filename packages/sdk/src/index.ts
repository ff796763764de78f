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
  LogRange,
  LedgerTransaction,
  Me,
  ReceiptCheck,
  Session,
  WorkflowEarnings,
  WorkflowView,
} from "./client.js";
