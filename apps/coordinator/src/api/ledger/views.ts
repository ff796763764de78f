import type { JobMoney, LedgerTxRow } from "@havn/store";

/** A ledger transaction as the API shows it: amounts as exact µHAI strings. */
export function ledgerTransactionView(t: LedgerTxRow) {
  return {
    id: t.id,
    object: "ledger_transaction" as const,
    kind: t.kind,
    job_id: t.jobId,
    memo: t.memo,
    created_at: t.createdAt,
    postings: t.postings.map((p) => ({ account: p.account, amount_uhai: p.amount.toString() })),
  };
}

export function jobMoneyView(m: JobMoney | null) {
  if (m === null) return null;
  return {
    state: m.state,
    payer: m.payer,
    escrow_uhai: m.escrow.toString(),
    charge_uhai: m.charge === null ? null : m.charge.toString(),
    price: m.price,
  };
}
