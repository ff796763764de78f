import { HavnError, evmAddressPattern } from "@havn/protocol";

/**
 * Sign-In with Ethereum (EIP-4361), verified with viem: the message names this coordinator's
 * domain and a nonce it issued (single-use, expiring), is within its validity period, and the
 * signature recovers to the message's address (an externally owned account; contract wallets
 * would need a chain to ask). viem is imported on first use: ~0.4 s.
 */
export async function verifySiwe(input: {
  message: string;
  signature: string;
  /** The domains the message may name (this coordinator's public host; on loopback, its aliases). */
  domains: readonly string[];
  now: number;
}): Promise<{ address: string; nonce: string }> {
  const [{ parseSiweMessage, validateSiweMessage }, { verifyMessage }] = await Promise.all([
    import("viem/siwe"),
    import("viem"),
  ]);
  const invalid = (why: string) => new HavnError("AUTH_SIWE_INVALID", `The Sign-In with Ethereum message ${why}.`);
  if (!/^0x[0-9a-fA-F]+$/.test(input.signature)) throw invalid("has no hex signature");
  const message = parseSiweMessage(input.message);
  if (!message.address || !evmAddressPattern.test(message.address) || !message.nonce)
    throw invalid("is not an EIP-4361 message");
  if (!message.domain || !input.domains.includes(message.domain))
    throw invalid(`is for ${String(message.domain)}, not ${input.domains[0]}`);
  if (!validateSiweMessage({ message, time: new Date(input.now) })) throw invalid("is expired or not yet valid");
  const signed = await verifyMessage({
    address: message.address,
    message: input.message,
    signature: input.signature as `0x${string}`,
  }).catch(() => false);
  if (!signed) throw invalid("is not signed by its address");
  return { address: message.address.toLowerCase(), nonce: message.nonce };
}
