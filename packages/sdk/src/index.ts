export { HavnClient } from "./client.js";
export type {
  Account,
  ApiKey,
  ChatOptions,
  ChatResult,
  HavnClientOptions,
  Health,
  JobView,
  Me,
  ReceiptCheck,
  Session,
} from "./client.js";
