import { HavnError } from "./errors.js";

/** µHAI in one HAI: every amount havn moves is a whole number of µHAI, as a bigint. */
export const microHaiPerHai = 1_000_000n;

/** HAI for people, from µHAI: 1 500 000n → `"1.5"`, -20n → `"-0.00002"`. */
export function formatHai(microHai: bigint): string {
  const sign = microHai < 0n ? "-" : "";
  const abs = microHai < 0n ? -microHai : microHai;
  const frac = (abs % microHaiPerHai).toString().padStart(6, "0").replace(/0+$/, "");
  return `${sign}${abs / microHaiPerHai}${frac ? `.${frac}` : ""}`;
}

/** µHAI from HAI as people write it (`12.5`; at most six decimals, no sign). */
export function parseHai(text: string): bigint {
  const m = /^([0-9]{1,12})(?:\.([0-9]{1,6}))?$/.exec(text.trim());
  if (!m)
    throw new HavnError("CONFIG_INVALID", "An amount is HAI with at most six decimals, e.g. 12.5.", {
      context: { Amount: text.slice(0, 40) },
    });
  return BigInt(m[1]!) * microHaiPerHai + BigInt((m[2] ?? "").padEnd(6, "0"));
}
