import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { HavnError } from "./errors.js";
import { generateKeyPair, keyPairFromSecret } from "./index.js";
import type { KeyPair } from "./crypto/suite.js";

interface KeyFile {
  readonly type: "ed25519";
  readonly public_key: string;
  readonly secret_key: string;
}

/**
 * Loads the Ed25519 key at `path`, creating it (mode 0600) on first start. Like ssh, a key file
 * other users can read is refused: whoever reads it can sign receipts as this node.
 */
export function loadOrCreateKeyFile(path: string): KeyPair & { created: boolean } {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const keys = generateKeyPair();
    const file: KeyFile = { type: "ed25519", public_key: keys.publicKey, secret_key: keys.secretKey };
    writeFileSync(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600); // the umask may have narrowed it further; never wider
    return { ...keys, created: true };
  }
  const mode = statSync(path).mode & 0o777;
  if (process.platform !== "win32" && (mode & 0o077) !== 0) {
    throw new HavnError("AUTH_KEY_FILE_INSECURE", "The key file is readable by other users.", {
      context: { File: path, Mode: `0${mode.toString(8)}`, Fix: `chmod 600 ${path}` },
    });
  }
  let parsed: KeyFile;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8")) as KeyFile;
    const keys = keyPairFromSecret(parsed.secret_key);
    if (parsed.type !== "ed25519" || keys.publicKey !== parsed.public_key) throw new Error("public key mismatch");
    return { ...keys, created: false };
  } catch (err) {
    throw new HavnError("AUTH_KEY_FILE_INVALID", "The key file does not hold a valid Ed25519 key.", {
      context: { File: path },
      cause: err,
    });
  }
}

/**
 * Where a coordinator's rotated-in key keeps its certificate (signed by the key it replaced, made
 * by `havn admin rotate-key`): beside the key file.
 */
export const keyCertificatePath = (keyPath: string): string => `${keyPath}.certificate.json`;
