import { jwtVerify, SignJWT, errors } from "jose";
import type { AccountRole } from "@havn/store";

const issuer = "havn";
const audience = "havn-api";

/** What an access token says. */
export interface AccessClaims {
  readonly accountId: string;
  readonly role: AccountRole;
}

/**
 * Short-lived access tokens: HS256 JWTs (jose) naming the account and its role. They cannot be
 * revoked before they expire — hence minutes, not days; the refresh token, which can, lasts long.
 */
export class AccessTokens {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly ttlSeconds: number,
  ) {
    this.key = new TextEncoder().encode(secret);
  }

  async issue(claims: AccessClaims): Promise<{ token: string; expiresIn: number }> {
    const token = await new SignJWT({ role: claims.role })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject(claims.accountId)
      .setIssuer(issuer)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(`${this.ttlSeconds}s`)
      .sign(this.key);
    return { token, expiresIn: this.ttlSeconds };
  }

  /** The claims of a valid token; undefined for anything else (bad signature, expired, other issuer). */
  async verify(token: string): Promise<AccessClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer, audience, algorithms: ["HS256"] });
      if (typeof payload.sub !== "string" || (payload.role !== "user" && payload.role !== "admin")) return undefined;
      return { accountId: payload.sub, role: payload.role };
    } catch (err) {
      if (err instanceof errors.JOSEError) return undefined;
      throw err;
    }
  }
}

/** Whether a bearer credential looks like a JWT (three base64url parts). */
export const looksLikeJwt = (credential: string) => /^[\w-]+\.[\w-]+\.[\w-]+$/.test(credential);
