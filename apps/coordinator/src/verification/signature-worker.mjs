// Verifies and makes Ed25519 signatures off the coordinator's event loop, a batch per message.
// Plain JavaScript with node:crypto only, so it loads in any worker without a TypeScript loader.
import { createPrivateKey, createPublicKey, sign, verify } from "node:crypto";
import { parentPort } from "node:worker_threads";

const maxCachedKeys = 4096;
const keys = new Map();
// PKCS#8 wrapper for a raw Ed25519 seed (RFC 8410).
const pkcs8Prefix = Buffer.from("302e020100300506032b657004220420", "hex");

function cached(id, make) {
  let key = keys.get(id);
  if (key === undefined) {
    key = make();
    if (keys.size >= maxCachedKeys) keys.delete(keys.keys().next().value);
    keys.set(id, key);
  }
  return key;
}

function check(item) {
  try {
    const signature = Buffer.from(item.signature, "base64url");
    if (signature.length !== 64 || !/^[A-Za-z0-9_-]{43}$/.test(item.publicKey)) return false;
    const key = cached(`p:${item.publicKey}`, () =>
      createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: item.publicKey }, format: "jwk" }),
    );
    return verify(null, item.message, key, signature);
  } catch {
    return false;
  }
}

/** A base64url signature, or null when the key is unusable (the caller retries inline for the error). */
function signOne(item) {
  try {
    const key = cached(`s:${item.secretKey}`, () => {
      const seed = Buffer.from(item.secretKey, "base64url");
      if (seed.length !== 32) throw new TypeError("An Ed25519 secret key is 32 bytes");
      return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: "der", type: "pkcs8" });
    });
    return sign(null, item.message, key).toString("base64url");
  } catch {
    return null;
  }
}

parentPort.on("message", (batch) => {
  parentPort.postMessage({
    id: batch.id,
    results: batch.items.map((item) => (item.op === "sign" ? signOne(item) : check(item))),
  });
});
