import type { FastifyInstance, FastifyRequest } from "fastify";
import { formatHai, HavnError, parseRequestBody } from "@havn/protocol";
import type { Store } from "@havn/store";
import type { LedgerActor, LedgerService } from "../../ledger/ledger-service.js";
import type { Settlement } from "../../ledger/settlement.js";
import type { AuthService } from "../../auth/auth-service.js";
import { idempotencyKeyOf } from "../idempotency.js";
import { jobView, noJob } from "../jobs/routes.js";
import { registerRoute, routes } from "../route-table.js";
import { adminLedgerRequestSchema, adminSettlementRequestSchema, withdrawRequestSchema } from "../schemas.js";
import { ledgerTransactionView } from "./views.js";

/** `?before=<epoch ms>` for paging back through transactions. */
function beforeOf(request: FastifyRequest): number | undefined {
  const raw = (request.query as Record<string, unknown>).before;
  if (raw === undefined) return undefined;
  if (typeof raw !== "string" || !/^[0-9]{1,16}$/.test(raw))
    throw new HavnError("REQUEST_INVALID", "`before` is a time in epoch milliseconds.");
  return Number(raw);
}

export interface LedgerRouteDeps {
  readonly ledger: LedgerService;
  /** Absent on a free network. */
  readonly settlement: Settlement | undefined;
  readonly store: Store;
  readonly auth: AuthService;
}

/** Balances, transactions, withdrawals, the dev faucet, and admins' credits, debits and holds. */
export function registerLedgerRoutes(app: FastifyInstance, deps: LedgerRouteDeps): void {
  const { ledger, settlement, store, auth } = deps;
  const actor = (request: FastifyRequest): LedgerActor => ({
    accountId: request.principal!.accountId,
    admin: auth.mayActFor(request.principal!, null),
  });
  const list = (txs: Parameters<typeof ledgerTransactionView>[0][]) => ({
    object: "list" as const,
    data: txs.map(ledgerTransactionView),
  });

  registerRoute(app, routes.balance, async (request) => {
    const b = await ledger.balance(request.principal!.accountId);
    return {
      object: "balance" as const,
      account: b.account,
      balance_uhai: b.balance.toString(),
      balance: formatHai(b.balance),
      pending_payouts_uhai: b.pendingPayouts.toString(),
    };
  });

  registerRoute(app, routes.ledgerTransactions, async (request) =>
    list(await ledger.transactions(request.principal!.accountId, 100, beforeOf(request))),
  );

  registerRoute(app, routes.faucet, async (request) =>
    ledgerTransactionView(await ledger.faucet(actor(request), idempotencyKeyOf(request, 200))),
  );

  registerRoute(app, routes.withdraw, async (request) => {
    const body = parseRequestBody(withdrawRequestSchema, request.body);
    return ledgerTransactionView(
      await ledger.withdraw(actor(request), body.amount_uhai, body.to, idempotencyKeyOf(request, 200)),
    );
  });

  registerRoute(app, routes.listWithdrawals, async (request) =>
    list(await ledger.transactions(request.principal!.accountId, 100, beforeOf(request), "withdraw")),
  );

  for (const [spec, kind] of [
    [routes.adminCredit, "credit"],
    [routes.adminDebit, "debit"],
  ] as const) {
    registerRoute(app, spec, async (request) => {
      const body = parseRequestBody(adminLedgerRequestSchema, request.body);
      return ledgerTransactionView(
        await ledger.adjust(
          actor(request),
          kind,
          { accountId: body.account_id, email: body.email, wallet: body.wallet },
          body.amount_uhai,
          body.reason,
          idempotencyKeyOf(request, 200),
        ),
      );
    });
  }

  registerRoute<{ id: string }>(
    app,
    routes.adminSettlement,
    async (request, _reply, { id }) => {
      const body = parseRequestBody(adminSettlementRequestSchema, request.body);
      if (!settlement) throw new HavnError("LEDGER_DISABLED", "This network runs free: no money moves.");
      const by = request.principal!.accountId;
      if (body.action === "hold") await settlement.hold(id, body.reason, by);
      else await settlement.release(id, body.action, body.reason, by);
      const job = (await store.jobs.get(id))!;
      return jobView(job, await store.ledger.transactions({ jobId: id, limit: 50 }));
    },
    noJob,
  );
}
