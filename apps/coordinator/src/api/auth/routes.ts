import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { HavnError, parseRequestBody } from "@havn/protocol";
import { accountView, apiKeyView, type AuthService, type TokenPair } from "../../auth/auth-service.js";
import { sha256Hex } from "../../auth/credentials.js";
import type { CoordinatorConfig } from "../../config.js";
import { addressOf } from "../guards.js";
import { registerRoute, routes } from "../route-table.js";
import {
  createKeyRequestSchema,
  inviteRequestSchema,
  loginRequestSchema,
  refreshRequestSchema,
  registerRequestSchema,
  siweVerifyRequestSchema,
} from "../schemas.js";

/** What a failed sign-in is: a wrong password, a spent or unknown refresh token, a bad wallet signature. */
const failedSignIn = new Set<string>(["AUTH_LOGIN_FAILED", "AUTH_REFRESH_INVALID", "AUTH_SIWE_INVALID"]);
const isFailedSignIn = (err: unknown) => err instanceof HavnError && failedSignIn.has(err.code);

const session = (account: Parameters<typeof accountView>[0], tokens: TokenPair) => ({
  account: accountView(account),
  ...tokens,
});

/** Accounts: register, sign in (password or wallet), tokens, API keys, invitations. */
export function registerAuthRoutes(app: FastifyInstance, deps: { auth: AuthService; config: CoordinatorConfig }): void {
  const { auth, config } = deps;

  registerRoute(app, routes.register, async (request, reply) => {
    const body = parseRequestBody(registerRequestSchema, request.body);
    const { account, tokens } = await auth.register(body);
    return reply.code(201).send(session(account, tokens));
  });

  /** A failed sign-in counts against the caller's address (see `SignInGuard`). */
  const counted = async <T>(request: FastifyRequest, reply: FastifyReply, attempt: () => Promise<T>): Promise<T> => {
    try {
      return await attempt();
    } catch (err) {
      if (isFailedSignIn(err)) app.signIns.failed(request, reply);
      throw err;
    }
  };

  registerRoute(app, routes.login, async (request, reply) => {
    const body = parseRequestBody(loginRequestSchema, request.body);
    const { account, tokens } = await app.signIns.password(
      request,
      reply,
      body.email,
      () => auth.login(body),
      isFailedSignIn,
    );
    return session(account, tokens);
  });

  registerRoute(app, routes.refresh, async (request, reply) => {
    const { refresh_token } = parseRequestBody(refreshRequestSchema, request.body);
    const client = sha256Hex(`${addressOf(request)}\n${request.headers["user-agent"] ?? ""}`);
    const tokens = await counted(request, reply, () => auth.refresh(refresh_token, client));
    const me = await auth.authenticate(`Bearer ${tokens.access_token}`);
    return session(await auth.account(me!.accountId), tokens);
  });

  registerRoute(app, routes.logout, async (request) => {
    await auth.logout(parseRequestBody(refreshRequestSchema, request.body).refresh_token);
    return {};
  });

  registerRoute(app, routes.me, async (request) => {
    const principal = request.principal!;
    return {
      account: accountView(await auth.account(principal.accountId)),
      via: principal.via,
      scopes: [...principal.scopes],
      key_id: principal.keyId ?? null,
      mode: config.mode,
    };
  });

  registerRoute(app, routes.siweNonce, async () => {
    const { nonce, expiresAt } = await auth.siweNonce();
    return { nonce, expires_at: expiresAt };
  });

  registerRoute(app, routes.siweVerify, async (request, reply) => {
    const body = parseRequestBody(siweVerifyRequestSchema, request.body);
    const verify = () => counted(request, reply, () => auth.siweVerify({ ...body, principal: request.principal }));
    // Binding checks the account's password: guarded as a login is.
    const result =
      request.principal && body.password !== undefined
        ? await app.signIns.password(request, reply, `account:${request.principal.accountId}`, verify, isFailedSignIn)
        : await verify();
    if (result.tokens) return session(result.account, result.tokens);
    const principal = request.principal!;
    return {
      account: accountView(result.account),
      via: principal.via,
      scopes: [...principal.scopes],
      key_id: principal.keyId ?? null,
      mode: config.mode,
    };
  });

  registerRoute(app, routes.createKey, async (request, reply) => {
    const body = parseRequestBody(createKeyRequestSchema, request.body);
    const { key, row } = await auth.createKey(request.principal!, body);
    return reply.code(201).send({ ...apiKeyView(row), key });
  });

  registerRoute(app, routes.listKeys, async (request) => ({
    object: "list" as const,
    data: (await auth.listKeys(request.principal!)).map(apiKeyView),
  }));

  registerRoute<{ id: string }>(
    app,
    routes.revokeKey,
    async (request, _reply, { id }) => {
      await auth.revokeKey(request.principal!, id);
      const row = (await auth.listKeys(request.principal!)).find((k) => k.id === id)!;
      return apiKeyView(row);
    },
    () => new HavnError("AUTH_KEY_NOT_FOUND", "This account has no live API key with this id."),
  );

  registerRoute(app, routes.createInvite, async (request, reply) => {
    const { ttl_seconds } = parseRequestBody(inviteRequestSchema, request.body ?? {});
    const { code, expiresAt } = await auth.createInvite(request.principal!, ttl_seconds);
    return reply.code(201).send({ code, expires_at: expiresAt });
  });
}
