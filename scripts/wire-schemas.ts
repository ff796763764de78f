import { z } from "zod";
import {
  chatCompletionRequestSchema,
  completionRequestSchema,
  coordinatorToNodeSchema,
  cosignedReceiptSchema,
  jobSpecSchema,
  nodeToCoordinatorSchema,
  receiptSchema,
} from "@havn/protocol";

/** The wire formats as JSON Schema (draft 2020-12), generated from the zod schemas that enforce them. */
export function renderWireSchemas(): string {
  const schemas = {
    "node-to-coordinator": nodeToCoordinatorSchema,
    "coordinator-to-node": coordinatorToNodeSchema,
    "job-spec": jobSpecSchema,
    receipt: receiptSchema,
    "cosigned-receipt": cosignedReceiptSchema,
    "chat-completion-request": chatCompletionRequestSchema,
    "completion-request": completionRequestSchema,
  };
  const out = Object.fromEntries(
    Object.entries(schemas).map(([name, schema]) => [
      name,
      z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }),
    ]),
  );
  return `${JSON.stringify(out, null, 2)}\n`;
}
