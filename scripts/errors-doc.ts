import { errorCatalog } from "@havn/protocol";

/** docs/errors.md as the catalog says it should be. */
export function renderErrorsDoc(): string {
  const rows = Object.entries(errorCatalog).map(
    ([code, spec]) => `| \`${code}\` | ${spec.status} | ${spec.retryable ? "yes" : "no"} | ${spec.description} |`,
  );
  return [
    "# Error codes",
    "",
    "Every error havn returns carries one of these codes. HTTP surfaces answer",
    '`{"error": {"code", "message", "type", "retryable", "details"?}}` with the status below; node',
    "WebSocket errors carry `code`, `message` and `retryable`. A retired code is never reused.",
    "",
    "This file is generated from `packages/protocol/src/errors.ts` by `npm run docs`; a test",
    "fails when the two disagree.",
    "",
    "| code | HTTP status | retryable | meaning |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
  ].join("\n");
}
