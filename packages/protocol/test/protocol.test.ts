import { describe, expect, it } from "vitest";
import * as browser from "../src/browser.ts";
import * as protocol from "../src/index.ts";
import {
  canonicalJson,
  contentId,
  cosignReceipt,
  errorCatalog,
  fromBase64Url,
  generateKeyPair,
  genesisHash,
  hashCanonical,
  HavnError,
  inputCommitment,
  keyId,
  keyPairFromSecret,
  logEntryHash,
  newJobId,
  nodeToCoordinatorSchema,
  receiptNode,
  receiptSchema,
  receiptSignerKey,
  receiptWorkflow,
  sha256Hex,
  sign,
  signReceipt,
  tokenIdsHash,
  toBase64Url,
  verify,
  verifyCosignedReceipt,
  type Receipt,
  type ReceiptV2,
} from "../src/index.ts";

describe("public surface", () => {
  it("exports exactly these names (widening the API shows here)", () => {
    expect(Object.keys(protocol).sort()).toMatchSnapshot();
  });
  it("browser entry exports the same names as the Node entry", () => {
    expect(Object.keys(browser).sort()).toEqual(Object.keys(protocol).sort());
  });
});

describe("ids", () => {
  it("are unique, sort by creation time and keep their shape across refills of the random pool", () => {
    const ids = Array.from({ length: 2_000 }, () => protocol.newJobId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(protocol.jobIdPattern);
    const stamps = ids.map((id) => id.slice(4, 16));
    expect([...stamps].sort()).toEqual(stamps);
    expect(Number.parseInt(stamps[0]!, 16)).toBeGreaterThan(Date.now() - 60_000);
    const hex = Array.from({ length: 600 }, () => protocol.randomHex(7));
    for (const h of hex) expect(h).toMatch(/^[0-9a-f]{14}$/);
    expect(new Set(hex).size).toBe(hex.length);
    expect(protocol.randomHex(300)).toHaveLength(600);
  });
});

describe("canonical JSON (RFC 8785)", () => {
  it("sorts keys and normalises numbers", () => {
    expect(canonicalJson({ b: 1, a: [1e21, 0.1, -0], c: "é" })).toBe('{"a":[1e+21,0.1,0],"b":1,"c":"é"}');
  });
  it("refuses values without a JSON form", () => {
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });
});

describe("hashes and content ids", () => {
  it("gives the IPFS CIDv1 (raw, sha2-256) of known bytes", () => {
    // `echo -n hello | ipfs add --cid-version 1 --raw-leaves` prints this id.
    expect(contentId("hello")).toBe("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq");
    expect(sha256Hex("hello")).toBe("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
  });
  it("base64url round-trips every length", () => {
    for (let n = 0; n < 70; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff);
      const text = toBase64Url(bytes);
      expect(text).toBe(Buffer.from(bytes).toString("base64url"));
      expect(fromBase64Url(text)).toEqual(bytes);
    }
  });
});

describe("Ed25519 with domain tags", () => {
  const keys = generateKeyPair();
  it("signs and verifies", () => {
    const sig = sign("receipt", { a: 1 }, keys.secretKey);
    expect(verify("receipt", { a: 1 }, sig, keys.publicKey)).toBe(true);
    expect(verify("receipt", { a: 2 }, sig, keys.publicKey)).toBe(false);
  });
  it("a signature for one domain does not verify as another", () => {
    const sig = sign("hello", { a: 1 }, keys.secretKey);
    expect(verify("receipt", { a: 1 }, sig, keys.publicKey)).toBe(false);
  });
  it("rejects garbage keys and signatures without throwing", () => {
    expect(verify("receipt", {}, "!!", keys.publicKey)).toBe(false);
    expect(verify("receipt", {}, "AAAA", "AAAA")).toBe(false);
  });
  it("recovers the public key from the secret", () => {
    expect(keyPairFromSecret(keys.secretKey)).toEqual(keys);
  });
  it("the browser (pure JS) and Node (OpenSSL) entries give identical signatures", () => {
    const payload = { job: "x", n: [1, 2, 3] };
    const a = sign("receipt", payload, keys.secretKey);
    const b = browser.sign("receipt", payload, keys.secretKey);
    expect(b).toBe(a);
    expect(browser.verify("receipt", payload, a, keys.publicKey)).toBe(true);
    expect(browser.keyPairFromSecret(keys.secretKey).publicKey).toBe(keys.publicKey);
    expect(browser.contentId("hello")).toBe(contentId("hello"));
  });
});

describe("receipts", () => {
  const node = generateKeyPair();
  const coordinator = generateKeyPair();
  const receipt: Receipt = {
    v: 1,
    job_id: newJobId(),
    attempt_id: "att-1",
    workflow_id: null,
    node_key: node.publicKey,
    model: "havn-tiny",
    model_hash: "a".repeat(64),
    backend: "builtin",
    params_hash: "b".repeat(64),
    input_hash: "c".repeat(64),
    outputs_cid: contentId("out"),
    latency_ms: 12,
    tokens: { prompt: 3, completion: 4 },
    energy_estimate: 0.5,
    runtime_hash: "d".repeat(64),
    finished_at: 1,
  };
  it("a co-signed receipt verifies node, coordinator and chain link", () => {
    const nodeSig = signReceipt(receipt, node.secretKey);
    const entry = logEntryHash(genesisHash, receipt, nodeSig);
    const bundle = cosignReceipt(receipt, nodeSig, { seq: 1, prev_hash: genesisHash, entry_hash: entry }, coordinator);
    expect(verifyCosignedReceipt(bundle, coordinator.publicKey)).toEqual({
      node: true,
      coordinator: true,
      chain: true,
    });
  });
  it("the co-signature and log link are over exactly the canonical JSON of their payloads", () => {
    const nodeSig = signReceipt(receipt, node.secretKey);
    const entry = logEntryHash(genesisHash, receipt, nodeSig);
    expect(entry).toBe(sha256Hex(`${genesisHash}\n${hashCanonical({ receipt, node_signature: nodeSig })}`));
    const log = { seq: 1, prev_hash: genesisHash, entry_hash: entry };
    const bundle = cosignReceipt(receipt, nodeSig, log, coordinator);
    expect(
      verify(
        "receipt-cosign",
        { receipt, node_signature: nodeSig, log },
        bundle.coordinator_signature,
        coordinator.publicKey,
      ),
    ).toBe(true);
    expect(verify("receipt", { ...receipt }, nodeSig, node.publicKey)).toBe(true);
  });

  it("tampering with any field breaks the signatures", () => {
    const nodeSig = signReceipt(receipt, node.secretKey);
    const entry = logEntryHash(genesisHash, receipt, nodeSig);
    const bundle = cosignReceipt(receipt, nodeSig, { seq: 1, prev_hash: genesisHash, entry_hash: entry }, coordinator);
    const forged = { ...bundle, receipt: { ...receipt, latency_ms: 3_600_000 } };
    expect(verifyCosignedReceipt(forged)).toEqual({ node: false, coordinator: false, chain: false });
    expect(verifyCosignedReceipt(bundle, generateKeyPair().publicKey).coordinator).toBe(false);
  });
});

describe("receipts, version 2", () => {
  const node = generateKeyPair();
  const coordinator = generateKeyPair();
  const input = { kind: "completion" as const, prompt: "yes" };
  const salt = "9".repeat(64);
  const receipt: ReceiptV2 = {
    v: 2,
    job_id: newJobId(),
    attempt_id: "att-1",
    signer: { kind: "node", key: node.publicKey },
    node_id: node.publicKey,
    workflow: { id: "wf-0123456789abcdef01234567", version: "2.1.0" },
    model: "havn-tiny",
    model_hash: "a".repeat(64),
    model_source: { kind: "generated", ref: "havn-tiny seed 1751545454" },
    backend: "builtin",
    runtime_hash: "d".repeat(64),
    sampling: { max_tokens: 8, temperature: 0, top_p: 1, seed: 7, stop: [] },
    input_commitment: inputCommitment(input, salt),
    outputs_cid: contentId("out"),
    output_token_ids_hash: tokenIdsHash([5, 6, 7]),
    finish_reason: "stop",
    tokens: { prompt: 3, completion: 3 },
    latency_ms: 12,
    energy_estimate: 0.5,
    finished_at: 1,
  };
  const bundleOf = (r: Receipt, signer: string) => {
    const nodeSig = signReceipt(r, signer);
    const log = { seq: 1, prev_hash: genesisHash, entry_hash: logEntryHash(genesisHash, r, nodeSig) };
    return cosignReceipt(r, nodeSig, log, coordinator);
  };

  it("parses, and a node-signed one verifies like version 1", () => {
    expect(receiptSchema.parse(receipt)).toEqual(receipt);
    expect(verifyCosignedReceipt(bundleOf(receipt, node.secretKey), coordinator.publicKey)).toEqual({
      node: true,
      coordinator: true,
      chain: true,
    });
    expect(receiptNode(receipt)).toBe(node.publicKey);
    expect(receiptWorkflow(receipt)).toBe("wf-0123456789abcdef01234567");
  });
  it("commits to the input with its salt: a guessed prompt cannot be confirmed without the salt", () => {
    expect(receipt.input_commitment).toBe(hashCanonical({ input, salt }));
    expect(receipt.input_commitment).not.toBe(hashCanonical(input));
    expect(inputCommitment(input, "8".repeat(64))).not.toBe(receipt.input_commitment);
    expect(inputCommitment({ kind: "completion", prompt: "no" }, salt)).not.toBe(receipt.input_commitment);
  });
  it("one the coordinator signed for a keyless node verifies with the coordinator key it names, and only that", () => {
    const forKeyless: ReceiptV2 = {
      ...receipt,
      signer: { kind: "coordinator", key_id: keyId(coordinator.publicKey) },
      node_id: "havnai:node-17",
    };
    expect(receiptSignerKey(forKeyless, coordinator.publicKey)).toBe(coordinator.publicKey);
    expect(verifyCosignedReceipt(bundleOf(forKeyless, coordinator.secretKey)).node).toBe(true);
    // A node cannot pass off its own signature as the coordinator's.
    expect(verifyCosignedReceipt(bundleOf(forKeyless, node.secretKey)).node).toBe(false);
    // Nor name a coordinator key other than the one that co-signed.
    const otherKey = { ...forKeyless, signer: { kind: "coordinator" as const, key_id: "0123456789abcdef" } };
    expect(receiptSignerKey(otherKey, coordinator.publicKey)).toBeUndefined();
    expect(verifyCosignedReceipt(bundleOf(otherKey, coordinator.secretKey)).node).toBe(false);
    // Nor speak for a node that has a key of its own.
    const forKeyed = { ...forKeyless, node_id: node.publicKey };
    expect(verifyCosignedReceipt(bundleOf(forKeyed, coordinator.secretKey)).node).toBe(false);
    // And a node-signed receipt names the signer as its node.
    const elsewhere = { ...receipt, node_id: generateKeyPair().publicKey };
    expect(verifyCosignedReceipt(bundleOf(elsewhere, node.secretKey)).node).toBe(false);
  });
  it("rejects a version 2 receipt missing a field, and a version 1 receipt with version 2 fields", () => {
    const { input_commitment: _, ...partial } = receipt;
    expect(receiptSchema.safeParse(partial).success).toBe(false);
    expect(receiptSchema.safeParse({ ...receipt, v: 1 }).success).toBe(false);
    expect(receiptSchema.safeParse({ ...receipt, input_hash: "c".repeat(64) }).success).toBe(false);
  });
});

describe("node messages", () => {
  it("accepts a heartbeat and rejects unknown types and extra keys", () => {
    expect(nodeToCoordinatorSchema.safeParse({ v: 2, type: "heartbeat", in_flight: [], busy_slots: 0 }).success).toBe(
      true,
    );
    expect(nodeToCoordinatorSchema.safeParse({ v: 2, type: "nope" }).success).toBe(false);
    expect(
      nodeToCoordinatorSchema.safeParse({ v: 2, type: "heartbeat", in_flight: [], busy_slots: 0, x: 1 }).success,
    ).toBe(false);
    // Another protocol version's frame (version 1: receipts version 1) does not parse.
    expect(nodeToCoordinatorSchema.safeParse({ v: 1, type: "heartbeat", in_flight: [], busy_slots: 0 }).success).toBe(
      false,
    );
  });
});

describe("errors", () => {
  it("every code carries an HTTP status in the 4xx/5xx range and a description", () => {
    for (const [code, spec] of Object.entries(errorCatalog)) {
      expect(code).toMatch(
        /^(REQUEST|CONFIG|COORDINATOR|STORE|MODEL|JOB|OUTPUT|LOG|NODE|RECEIPT|BACKEND|INTERNAL|AUTH|LEDGER|STAKE|GOVERNANCE|WORKFLOW)_[A-Z_]+$/,
      );
      expect(spec.status).toBeGreaterThanOrEqual(400);
      expect(spec.status).toBeLessThan(600);
      expect(spec.description.length).toBeGreaterThan(10);
    }
  });
  it("reads like a bug report and round-trips the wire", () => {
    const err = new HavnError("JOB_NOT_FOUND", "No job with this id.", { context: { Job: "job-1" } });
    expect(err.message).toBe("No job with this id.\nJob: job-1");
    expect(err.status).toBe(404);
    const back = HavnError.fromBody(err.toBody());
    expect(back.code).toBe("JOB_NOT_FOUND");
    expect(back.retryable).toBe(false);
  });
});
