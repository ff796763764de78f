// Verifies batches of Ed25519 signatures off the coordinator's event loop. Plain JavaScript with
// node:crypto only, so it loads in any worker without a TypeScript loader.
import { createPublicKey, verify } from "node:crypto";
import { parentPort } from "node:worker_threads";

const maxCachedKeys = 4096;
const keys = new Map();

function keyObject(publicKey) {
  let key = keys.get(publicKey);
  if (key === undefined) {
    key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: publicKey }, format: "jwk" });
    if (keys.size >= maxCachedKeys) keys.delete(keys.keys().next().value);
    keys.set(publicKey, key);
  }
  return key;
}

function check(item) {
  try {
    const signature = Buffer.from(item.signature, "base64url");
    if (signature.length !== 64 || !/^[A-Za-z0-9_-]{43}$/.test(item.publicKey)) return false;
    return verify(null, item.message, keyObject(item.publicKey), signature);
  } catch {
    return false;
  }
}

parentPort.on("message", (batch) => {
  parentPort.postMessage({ id: batch.id, results: batch.items.map(check) });
});
