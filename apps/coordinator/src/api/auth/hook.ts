import type { FastifyInstance } from "fastify";
import { HavnError } from "@havn/protocol";
import type { AuthLevel, AuthService, Principal } from "../../auth/auth-service.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Who the request acts as; set before the handler on every route that looks at credentials. */
    principal: Principal | undefined;
  }
  interface FastifyContextConfig {
    /** Who may call the route (every route says; see `AuthLevel`). */
    auth?: AuthLevel;
  }
}

/**
 * Checks every request against its route's `auth` level before anything else runs. A route that
 * says nothing is refused (default deny): a route added without deciding who may call it fails
 * closed, and the route-enumeration test names it.
 */
export function installAuth(app: FastifyInstance, auth: AuthService): void {
  app.decorateRequest("principal", undefined);
  app.addHook("onRequest", async (request, reply) => {
    // No route matched: the not-found handler answers, and says nothing about credentials.
    if (request.routeOptions.url === undefined) return;
    const level = request.routeOptions.config.auth;
    if (level === "public") return;
    if (level === undefined)
      throw new HavnError("AUTH_FORBIDDEN", "This route has no access rule; it is closed.", {
        context: { Route: `${request.method} ${request.routeOptions.url}` },
      });
    let principal: Principal | undefined;
    try {
      principal = await auth.authenticate(request.headers.authorization);
    } catch (err) {
      // Counted per address; past the limit this answers 429 instead.
      app.signIns.failed(request, reply);
      reply.header("www-authenticate", 'Bearer error="invalid_token"');
      throw err;
    }
    request.principal = principal;
    if (auth.allows(principal, level)) return;
    if (principal === undefined) {
      reply.header("www-authenticate", "Bearer");
      throw new HavnError(
        "AUTH_REQUIRED",
        "This route needs a credential: `Authorization: Bearer <API key or access token>`.",
      );
    }
    throw new HavnError("AUTH_FORBIDDEN", `This credential may not do this: the route needs ${needs(level)}.`, {
      context: { Route: `${request.method} ${request.routeOptions.url}` },
    });
  });
}

function needs(level: AuthLevel): string {
  switch (level) {
    case "jobs":
    case "metrics":
      return `the \`${level}\` scope`;
    case "owner":
      return "a login or an admin-scoped key";
    case "admin":
      return "an admin";
    default:
      return "a credential";
  }
}
