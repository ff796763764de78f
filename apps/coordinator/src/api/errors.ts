import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HavnError, openAIErrorBody } from "@havn/protocol";

/** Fastify's own errors, mapped to catalog codes. */
const fastifyCodes: Record<string, ConstructorParameters<typeof HavnError>[0]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: "REQUEST_MALFORMED_JSON",
  FST_ERR_CTP_EMPTY_JSON_BODY: "REQUEST_MALFORMED_JSON",
  FST_ERR_CTP_BODY_TOO_LARGE: "REQUEST_TOO_LARGE",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "REQUEST_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "REQUEST_INVALID",
  FST_ERR_CTP_INVALID_TYPE: "REQUEST_UNSUPPORTED_MEDIA_TYPE",
  FST_ERR_VALIDATION: "REQUEST_INVALID",
  FST_ERR_BAD_URL: "REQUEST_INVALID",
  FST_ERR_MAX_PARAM_LENGTH: "REQUEST_INVALID",
};

export function toHavnError(err: unknown): HavnError {
  if (err instanceof HavnError) return err;
  const e = err as Partial<FastifyError> & { message?: string };
  const code = e.code ? fastifyCodes[e.code] : undefined;
  if (code) return new HavnError(code, e.message ?? code);
  if (err instanceof SyntaxError) return new HavnError("REQUEST_MALFORMED_JSON", err.message);
  if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 500) {
    return new HavnError("REQUEST_INVALID", e.message ?? "Bad request.");
  }
  return new HavnError("INTERNAL_ERROR", "An unexpected error occurred in the coordinator.", { cause: err });
}

export function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const e = toHavnError(err);
  if (e.status >= 500 && e.code === "INTERNAL_ERROR") reply.log.error({ err: e.cause ?? err }, "internal error");
  return reply.code(e.status).send(openAIErrorBody(e.toBody(), e.status));
}

/**
 * Fastify's options for errors raised before a route runs: a bad URL or an over-long path
 * parameter (`frameworkErrors`), and a request Node's HTTP parser refuses (`clientErrorHandler`:
 * a bad `Content-Length`, headers too large, a slow sender) — each answered with a catalog body.
 */
export const frameworkErrorOptions = {
  frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => {
    void sendError(reply, err);
  },
  clientErrorHandler: (err: Error & { code?: string }, socket: Duplex) => {
    if (err.code === "ECONNRESET" || socket.destroyed) return;
    const e =
      err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? new HavnError("REQUEST_TIMEOUT", "The request did not arrive in time.")
        : err.code === "HPE_HEADER_OVERFLOW"
          ? new HavnError("REQUEST_HEADERS_TOO_LARGE", "The request's headers are too large.")
          : new HavnError("REQUEST_INVALID", "The request is not valid HTTP.");
    const status = e.status;
    const body = JSON.stringify(openAIErrorBody(e.toBody(), status));
    if (socket.writable)
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    socket.destroy();
  },
};

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, _request, reply) => sendError(reply, err));
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new HavnError("REQUEST_ROUTE_NOT_FOUND", "No such route.", {
        context: { Route: `${request.method} ${request.url}` },
      }),
    ),
  );
  // Every body havn accepts is JSON; anything else is a 415, not a string handed to a schema.
  app.removeContentTypeParser("text/plain");
  // HavnAI clients send `Content-Type: application/json` with empty GET bodies: accept those.
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "" || body === undefined) return done(null, undefined);
    void parseJson(request, body as string, done);
  });
}
