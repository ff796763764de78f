export { HavnClient } from "./client.js";
export type { ChatOptions, ChatResult, HavnClientOptions, Health, JobView, ReceiptCheck } from "./client.js";
