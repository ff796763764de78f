import rateLimit from "@fastify/rate-limit";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HavnError } from "@havn/protocol";
import type { AuthService } from "../auth/auth-service.js";
import type { CoordinatorConfig } from "../config.js";
import { installAuth } from "./auth/hook.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Failed sign-ins per address (see `SignInGuard`). */
    signIns: SignInGuard;
  }
}

/**
 * Failed sign-ins — a bad credential, password or refresh token — counted per address in a
 * one-minute window. Past the limit, the address's sign-ins are refused *before* they are checked
 * (429 with `Retry-After`), so a guess costs nothing and says nothing: a limit that checked first
 * and refused after would still tell a guesser which password was right.
 */
export class SignInGuard {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private static readonly windowMs = 60_000;
  private static readonly maxAddresses = 100_000;

  constructor(private readonly limit: number) {}

  /** Throws 429 REQUEST_RATE_LIMITED when the request's address has failed too often this minute. */
  check(request: FastifyRequest, reply: FastifyReply, now = Date.now()): void {
    if (this.limit <= 0) return;
    const w = this.windows.get(request.ip);
    if (!w || now - w.start >= SignInGuard.windowMs || w.count < this.limit) return;
    const after = Math.max(1, Math.ceil((w.start + SignInGuard.windowMs - now) / 1000));
    reply.header("retry-after", after);
    throw new HavnError(
      "REQUEST_RATE_LIMITED",
      `Too many failed sign-ins from this address: at most ${this.limit} a minute; retry after ${after} s.`,
    );
  }

  failed(request: FastifyRequest, now = Date.now()): void {
    if (this.limit <= 0) return;
    let w = this.windows.get(request.ip);
    if (!w || now - w.start >= SignInGuard.windowMs) {
      this.windows.delete(request.ip);
      if (this.windows.size >= SignInGuard.maxAddresses) this.prune(now);
      w = { start: now, count: 0 };
      this.windows.set(request.ip, w);
    }
    w.count++;
  }

  /** Forgets ended windows; if a flood of addresses leaves none ended, the oldest go. */
  private prune(now: number): void {
    for (const [address, w] of this.windows) if (now - w.start >= SignInGuard.windowMs) this.windows.delete(address);
    for (const address of this.windows.keys()) {
      if (this.windows.size < SignInGuard.maxAddresses) break;
      this.windows.delete(address);
    }
  }
}

type Limiter = ReturnType<FastifyInstance["createRateLimit"]>;

/**
 * Credentials and the limits around them, in the order a request meets them (production mode;
 * dev mode is one person on one machine, with nothing to share fairly):
 * 1. per address, every request, before anything else (`addressRateLimitPerMinute`);
 * 2. the credential check (`installAuth`); failures count per address (`authFailureLimitPerMinute`)
 *    — a guessed key, a wrong password — and past the limit the address's sign-ins are refused
 *    unchecked (`SignInGuard`);
 * 3. per credential (an API key, or a login's account), or per address without one, before the
 *    body is read (`rateLimitPerMinute`, `anonymousRateLimitPerMinute`);
 * 4. per account, across all its keys (`accountRateLimitPerMinute`).
 * Each refusal is 429 REQUEST_RATE_LIMITED with `Retry-After`.
 */
export async function installAuthAndLimits(
  app: FastifyInstance,
  auth: AuthService,
  config: CoordinatorConfig,
): Promise<void> {
  const limits = [
    config.rateLimitPerMinute,
    config.anonymousRateLimitPerMinute,
    config.accountRateLimitPerMinute,
    config.addressRateLimitPerMinute,
    config.authFailureLimitPerMinute,
  ];
  const production = config.mode === "production";
  app.decorate("signIns", new SignInGuard(production ? config.authFailureLimitPerMinute : 0));
  installAuth(app, auth);
  if (!production || !limits.some((n) => n > 0)) return;
  await app.register(rateLimit, {
    global: true,
    hook: "preParsing",
    timeWindow: 60_000,
    keyGenerator: (request) =>
      request.principal ? `p:${request.principal.keyId ?? request.principal.accountId}` : `ip:${request.ip}`,
    max: (request) =>
      (request.principal ? config.rateLimitPerMinute : config.anonymousRateLimitPerMinute) || Number.MAX_SAFE_INTEGER,
    errorResponseBuilder: (_request, context) =>
      new HavnError(
        "REQUEST_RATE_LIMITED",
        `Too many requests: at most ${context.max} a minute; retry after ${context.after}.`,
      ),
  });
  const limiter = (max: number, key: (request: FastifyRequest) => string) =>
    max > 0 ? { max, check: app.createRateLimit({ max, timeWindow: 60_000, keyGenerator: key }) } : undefined;
  const enforce = async (
    l: { max: number; check: Limiter } | undefined,
    what: string,
    request: FastifyRequest,
    reply: FastifyReply,
  ) => {
    if (!l) return;
    const verdict = await l.check(request);
    if (verdict.isAllowed || !verdict.isExceeded) return;
    reply.header("retry-after", verdict.ttlInSeconds);
    throw new HavnError(
      "REQUEST_RATE_LIMITED",
      `Too many ${what}: at most ${l.max} a minute; retry after ${verdict.ttlInSeconds} s.`,
    );
  };

  const perAddress = limiter(config.addressRateLimitPerMinute, (r) => `addr:${r.ip}`);
  app.addHook("onRequest", (request, reply) => enforce(perAddress, "requests from this address", request, reply));
  const perAccount = limiter(config.accountRateLimitPerMinute, (r) => `acct:${r.principal!.accountId}`);
  app.addHook("preParsing", async (request, reply) => {
    if (request.principal) await enforce(perAccount, "requests from this account", request, reply);
  });
}
