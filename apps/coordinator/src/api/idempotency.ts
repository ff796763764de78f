import type { FastifyRequest } from "fastify";
import { HavnError } from "@havn/protocol";

/**
 * A request's `Idempotency-Key` (Stripe's convention: printable ASCII, up to `maxLength`), or null
 * without one. A retry with the same key gets what the first request made, never a second one.
 */
export function idempotencyKeyOf(request: FastifyRequest, maxLength = 255): string | null {
  const key = request.headers["idempotency-key"];
  if (key === undefined) return null;
  if (typeof key !== "string" || key.length > maxLength || !/^[\x21-\x7e]+$/.test(key))
    throw new HavnError("REQUEST_INVALID", `Idempotency-Key must be 1 to ${maxLength} printable ASCII characters.`);
  return key;
}
