import rateLimit from "@fastify/rate-limit";
import { isIPv6 } from "node:net";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HavnError } from "@havn/protocol";
import type { AuthService } from "../auth/auth-service.js";
import type { CoordinatorConfig } from "../config.js";
import { installAuth } from "./auth/hook.js";

declare module "fastify" {
  interface FastifyInstance {
    /** Failed sign-ins per address and per email (see `SignInGuard`). */
    signIns: SignInGuard;
  }
}

/**
 * The address a limit counts: an IPv4 address, or an IPv6 address's /64 — one host usually holds a
 * whole /64, and counting single IPv6 addresses would give it 2^64 fresh budgets.
 */
export function addressOf(request: FastifyRequest): string {
  const ip = request.ip;
  if (!isIPv6(ip) || ip.startsWith("::ffff:")) return ip;
  const [head = "", tail = ""] = ip.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === "" ? [] : tail.split(":");
  const groups = ip.includes("::")
    ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right]
    : left;
  return `${groups
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(":")}::/64`;
}

interface Window {
  start: number;
  failed: number;
  /** Password checks in progress: counted until they end, so a burst cannot outrun the count. */
  pending: number;
}

/**
 * Failed sign-ins, counted in one-minute windows.
 *
 * A password is guessable, so a login is refused *before* it is checked once its address (or /64)
 * or its email has failed too often — a limit that checked first and refused after would still
 * tell a guesser, by a 200, which password was right — and checks in flight count against the
 * limit, so a burst of parallel guesses cannot slip past it.
 *
 * API keys, access tokens, refresh tokens and wallet signatures cannot be guessed (256 random
 * bits, or a signature): a valid one is never refused here — so a stranger flooding junk from a
 * shared address locks no one out — and only the failures themselves turn from 401 into 429
 * past the limit, which keeps a flood of junk cheap to answer.
 */
export class SignInGuard {
  private readonly windows = new Map<string, Window>();
  private static readonly windowMs = 60_000;
  private static readonly maxKeys = 100_000;

  constructor(
    private readonly perAddress: number,
    private readonly perEmail: number,
  ) {}

  /** Runs a password check, unless the address or the email has failed too often this minute. */
  async password<T>(
    request: FastifyRequest,
    reply: FastifyReply,
    email: string,
    check: () => Promise<T>,
    isFailure: (err: unknown) => boolean,
  ): Promise<T> {
    const now = Date.now();
    const keys: [string, number][] = [
      [`addr:${addressOf(request)}`, this.perAddress],
      [`email:${email.trim().toLowerCase()}`, this.perEmail],
    ];
    const limited = keys.filter(([, limit]) => limit > 0);
    for (const [key, limit] of limited) {
      const w = this.window(key, now);
      if (w.failed + w.pending >= limit)
        this.refuse(reply, w, now, key.startsWith("email:") ? "for this email" : "from this address", limit);
    }
    const windows = limited.map(([key]) => this.window(key, now));
    for (const w of windows) w.pending++;
    try {
      return await check();
    } catch (err) {
      if (isFailure(err)) for (const w of windows) w.failed++;
      throw err;
    } finally {
      for (const w of windows) w.pending--;
    }
  }

  /**
   * Counts a failed credential (key, token, refresh token, wallet signature) from the request's
   * address; past the limit, throws 429 in place of the failure's own answer.
   */
  failed(request: FastifyRequest, reply: FastifyReply): void {
    if (this.perAddress <= 0) return;
    const now = Date.now();
    const key = `addr:${addressOf(request)}`;
    const w = this.window(key, now);
    w.failed++;
    if (w.failed > this.perAddress) this.refuse(reply, w, now, "from this address", this.perAddress);
  }

  private refuse(reply: FastifyReply, w: Window, now: number, what: string, limit: number): never {
    const after = Math.max(1, Math.ceil((w.start + SignInGuard.windowMs - now) / 1000));
    reply.header("retry-after", after);
    throw new HavnError(
      "REQUEST_RATE_LIMITED",
      `Too many failed sign-ins ${what}: at most ${limit} a minute; retry after ${after} s.`,
    );
  }

  private window(key: string, now: number): Window {
    let w = this.windows.get(key);
    if (w && now - w.start < SignInGuard.windowMs) return w;
    if (w && w.pending > 0) {
      // A new minute, with checks of the old one still running: they end in this window.
      w.start = now;
      w.failed = 0;
      return w;
    }
    this.windows.delete(key);
    if (this.windows.size >= SignInGuard.maxKeys) this.prune(now);
    w = { start: now, failed: 0, pending: 0 };
    this.windows.set(key, w);
    return w;
  }

  /** Forgets ended windows; if a flood of addresses leaves none ended, the oldest go. */
  private prune(now: number): void {
    for (const [key, w] of this.windows)
      if (now - w.start >= SignInGuard.windowMs && w.pending === 0) this.windows.delete(key);
    for (const key of this.windows.keys()) {
      if (this.windows.size < SignInGuard.maxKeys) break;
      this.windows.delete(key);
    }
  }
}

type Limiter = ReturnType<FastifyInstance["createRateLimit"]>;

/**
 * Credentials and the limits around them, in the order a request meets them (production mode;
 * dev mode is one person on one machine, with nothing to share fairly):
 * 1. per address, every request, before anything else (`addressRateLimitPerMinute`);
 * 2. the credential check (`installAuth`); failed sign-ins count per address
 *    (`authFailureLimitPerMinute`) and, for passwords, per email (`emailFailureLimitPerMinute`):
 *    see `SignInGuard`;
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
  app.decorate(
    "signIns",
    new SignInGuard(
      production ? config.authFailureLimitPerMinute : 0,
      production ? config.emailFailureLimitPerMinute : 0,
    ),
  );
  if (!production || !limits.some((n) => n > 0)) {
    installAuth(app, auth);
    return;
  }
  await app.register(rateLimit, {
    global: true,
    hook: "preParsing",
    timeWindow: 60_000,
    keyGenerator: (request) =>
      request.principal ? `p:${request.principal.keyId ?? request.principal.accountId}` : `ip:${addressOf(request)}`,
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

  // Per address first, before the credential is looked at: a request refused by its credential
  // still counts here.
  const perAddress = limiter(config.addressRateLimitPerMinute, (r) => `addr:${addressOf(r)}`);
  app.addHook("onRequest", (request, reply) => enforce(perAddress, "requests from this address", request, reply));
  installAuth(app, auth);
  const perAccount = limiter(config.accountRateLimitPerMinute, (r) => `acct:${r.principal!.accountId}`);
  app.addHook("preParsing", async (request, reply) => {
    if (request.principal) await enforce(perAccount, "requests from this account", request, reply);
  });
}
