import type { AccountRole, AccountRow, ApiKeyRow, ApiKeyScope, SessionRow, UseSessionResult } from "./types.js";

type Raw = Record<string, unknown>;
const num = (v: unknown) => (typeof v === "number" ? v : Number(v));
const numOrNull = (v: unknown) => (v === null || v === undefined ? null : num(v));
const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

export function rowToAccount(r: Raw): AccountRow {
  return {
    id: String(r.id),
    email: str(r.email),
    wallet: str(r.wallet),
    passwordHash: str(r.password_hash),
    role: r.role as AccountRole,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function rowToApiKey(r: Raw): ApiKeyRow {
  return {
    id: String(r.id),
    accountId: String(r.account_id),
    name: String(r.name),
    prefix: String(r.prefix),
    keyHash: String(r.key_hash),
    scopes: (typeof r.scopes === "string" ? JSON.parse(r.scopes) : r.scopes) as ApiKeyScope[],
    createdAt: num(r.created_at),
    lastUsedAt: numOrNull(r.last_used_at),
    revokedAt: numOrNull(r.revoked_at),
  };
}

export function rowToSession(r: Raw): SessionRow {
  return {
    id: String(r.id),
    accountId: String(r.account_id),
    familyId: String(r.family_id),
    tokenHash: String(r.token_hash),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    usedAt: numOrNull(r.used_at),
    usedBy: r.used_by === null || r.used_by === undefined ? null : String(r.used_by),
    revokedAt: numOrNull(r.revoked_at),
  };
}

/**
 * What spending a refresh token does (both stores, inside their transaction): `use` marks it spent,
 * `revokeFamily` ends its login (a replay), or neither (refused as it stands).
 */
export function sessionUse(
  session: SessionRow | undefined,
  now: number,
  graceMs: number,
  client: string | undefined,
): { result: UseSessionResult; use?: true; revokeFamily?: true } {
  if (!session) return { result: { ok: false, reason: "unknown" } };
  if (session.revokedAt !== null) return { result: { ok: false, reason: "revoked" } };
  if (session.usedAt !== null)
    return now - session.usedAt <= graceMs && client !== undefined && session.usedBy === client
      ? { result: { ok: false, reason: "raced" } }
      : { result: { ok: false, reason: "reused" }, revokeFamily: true };
  if (session.expiresAt <= now) return { result: { ok: false, reason: "expired" } };
  return { result: { ok: true, session: { ...session, usedAt: now } }, use: true };
}

/** Which unique constraint an insert broke, from either driver's message. */
export function uniqueViolation(err: unknown): "email" | "wallet" | undefined {
  const e = err as { code?: string; message?: string; constraint?: string };
  const text = `${e.constraint ?? ""} ${e.message ?? ""}`;
  if (!(e.code === "23505" || e.code === "SQLITE_CONSTRAINT_UNIQUE")) return undefined;
  if (text.includes("email")) return "email";
  if (text.includes("wallet")) return "wallet";
  return undefined;
}
