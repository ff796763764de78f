import { keccak_256 } from "@noble/hashes/sha3";

/** An EVM address as text: 0x and 40 hex digits, in any case. */
export const evmAddressPattern = /^0x[0-9a-fA-F]{40}$/;

/**
 * An EVM address with the EIP-55 mixed-case checksum, as wallets show it. havn stores addresses
 * lower-case and shows them this way.
 */
export function checksumAddress(address: string): string {
  if (!evmAddressPattern.test(address)) throw new TypeError(`not an EVM address: ${address.slice(0, 64)}`);
  const lower = address.slice(2).toLowerCase();
  const hash = keccak_256(new TextEncoder().encode(lower));
  let out = "0x";
  for (let i = 0; i < 40; i++) {
    const nibble = (hash[i >> 1]! >> (i % 2 === 0 ? 4 : 0)) & 0xf;
    out += nibble >= 8 ? lower[i]!.toUpperCase() : lower[i]!;
  }
  return out;
}
