import { writeGguf, type GgufTensor, type GgufValue } from "./gguf-writer.js";

/**
 * havn's built-in model: a tiny llama-architecture GGUF written by this code, byte-identical on
 * every generation (no npm package ships LLM weights and nothing may be downloaded at run time).
 *
 * Each printable character token has a one-hot embedding in its own dimension; the output layer
 * encodes log P(next | current) of a character-bigram model counted from `corpus`, so sampled
 * text looks like English fragments. Attention and FFN weights are small values from a seeded
 * generator: every layer runs and context matters a little. Greedy decoding repeats itself —
 * honest for a model this size, and exactly what determinism tests need.
 */
export interface TinyModelSpec {
  readonly name: string;
  readonly corpus: readonly string[];
  readonly seed: number;
  readonly embeddingLength: number;
  readonly heads: number;
  readonly feedForwardLength: number;
  readonly layers: number;
  readonly contextLength: number;
}

export const defaultCorpus: readonly string[] = [
  "The network turns idle graphics cards into one service that anyone can use.",
  "Every job is routed to a node, the node signs a receipt, and the coordinator records it.",
  "Validators check a sample of the work and the fees are split between the people who did it.",
  "A small model runs on the laptop so the whole network can be tested without a download.",
  "The answer is short, the receipt is signed, and the output has a content id.",
  "Nodes earn reputation when they finish their work on time and lose it when they lie.",
  "Creators publish workflows and are paid each time one of their workflows runs.",
  "This is a tiny model: it knows letters and pairs of letters and nothing else.",
];

export const defaultTinyModelSpec: TinyModelSpec = {
  name: "havn-tiny",
  corpus: defaultCorpus,
  seed: 0x6861766e, // "havn"
  embeddingLength: 128,
  heads: 4,
  feedForwardLength: 256,
  layers: 2,
  contextLength: 2048,
};

const spaceMarker = "\u2581";
const chatTemplate =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** Token types of llama.cpp's vocabulary. */
const tokenType = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

/** mulberry32: a tiny seeded generator; only + * >>> and Math.imul, so every platform agrees. */
function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Vocabulary {
  readonly tokens: string[];
  readonly scores: number[];
  readonly types: number[];
  readonly charId: Map<string, number>;
  readonly newlineId: number;
  readonly imStart: number;
  readonly imEnd: number;
}

function buildVocabulary(): Vocabulary {
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const types: number[] = [tokenType.unknown, tokenType.control, tokenType.control];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(tokenType.byte);
    scores.push(0);
  }
  const charId = new Map<string, number>();
  for (const ch of [spaceMarker, ...Array.from({ length: 0x7e - 0x21 + 1 }, (_, i) => String.fromCharCode(0x21 + i))]) {
    charId.set(ch, tokens.length);
    tokens.push(ch);
    types.push(tokenType.normal);
    scores.push(-1);
  }
  const imStart = tokens.length;
  tokens.push("<|im_start|>");
  types.push(tokenType.control);
  scores.push(0);
  const imEnd = tokens.length;
  tokens.push("<|im_end|>");
  types.push(tokenType.control);
  scores.push(0);
  return { tokens, scores, types, charId, newlineId: 3 + 0x0a, imStart, imEnd };
}

/** log P(next | current) over character tokens and end-of-text, add-α smoothed. */
function bigramLogProbs(corpus: readonly string[], vocab: Vocabulary): Map<number, Map<number, number>> {
  const alpha = 0.1;
  const counts = new Map<number, Map<number, number>>();
  const add = (a: number, b: number) => {
    let row = counts.get(a);
    if (!row) counts.set(a, (row = new Map()));
    row.set(b, (row.get(b) ?? 0) + 1);
  };
  for (const line of corpus) {
    const ids = [...line.replace(/ /g, spaceMarker)].map((c) => vocab.charId.get(c)).filter((id) => id !== undefined);
    let prev = vocab.newlineId; // a line starts after a newline, as an assistant turn does
    for (const id of ids) {
      add(prev, id);
      prev = id;
    }
    add(prev, vocab.imEnd);
  }
  const targets = [...vocab.charId.values(), vocab.imEnd];
  const states = [...vocab.charId.values(), vocab.newlineId];
  const out = new Map<number, Map<number, number>>();
  for (const a of states) {
    const row = counts.get(a) ?? new Map<number, number>();
    const total = [...row.values()].reduce((x, y) => x + y, 0) + alpha * targets.length;
    out.set(a, new Map(targets.map((b) => [b, Math.log(((row.get(b) ?? 0) + alpha) / total)])));
  }
  return out;
}

export function buildTinyModel(spec: TinyModelSpec = defaultTinyModelSpec): Uint8Array {
  const { embeddingLength: embd, heads, feedForwardLength: ff, layers, contextLength } = spec;
  const vocab = buildVocabulary();
  const n = vocab.tokens.length;
  const rand = seededUniform(spec.seed);
  const uniform = (length: number, scale: number) => Float32Array.from({ length }, () => (rand() * 2 - 1) * scale);

  // Each state token gets its own dimension; the rest share small random embeddings.
  const dimOf = new Map<number, number>();
  [...vocab.charId.values(), vocab.newlineId, vocab.imStart, vocab.imEnd, 1, 2].forEach((id, i) => dimOf.set(id, i));
  if (dimOf.size > embd) throw new Error("buildTinyModel: more state tokens than embedding dimensions");
  const tokenEmbd = new Float32Array(embd * n);
  for (let t = 0; t < n; t++) {
    const d = dimOf.get(t);
    if (d !== undefined) tokenEmbd[t * embd + d] = 1;
    else for (let k = dimOf.size; k < embd; k++) tokenEmbd[t * embd + k] = (rand() * 2 - 1) * 0.3;
  }

  // output_norm turns a one-hot row into sqrt(embd) at its dimension; divide that back out.
  const logits = bigramLogProbs(spec.corpus, vocab);
  const unreachable = -30;
  const output = new Float32Array(embd * n);
  const gain = Math.sqrt(embd);
  for (const [state, row] of logits) {
    const d = dimOf.get(state)!;
    for (let b = 0; b < n; b++) output[b * embd + d] = (row.get(b) ?? unreachable) / gain;
  }

  const ones = (length: number) => new Float32Array(length).fill(1);
  const tensors: GgufTensor[] = [{ name: "token_embd.weight", dims: [embd, n], data: tokenEmbd }];
  for (let l = 0; l < layers; l++) {
    tensors.push(
      { name: `blk.${l}.attn_norm.weight`, dims: [embd], data: ones(embd) },
      { name: `blk.${l}.attn_q.weight`, dims: [embd, embd], data: uniform(embd * embd, 0.01) },
      { name: `blk.${l}.attn_k.weight`, dims: [embd, embd], data: uniform(embd * embd, 0.01) },
      { name: `blk.${l}.attn_v.weight`, dims: [embd, embd], data: uniform(embd * embd, 0.01) },
      { name: `blk.${l}.attn_output.weight`, dims: [embd, embd], data: uniform(embd * embd, 0.01) },
      { name: `blk.${l}.ffn_norm.weight`, dims: [embd], data: ones(embd) },
      { name: `blk.${l}.ffn_gate.weight`, dims: [embd, ff], data: uniform(embd * ff, 0.02) },
      { name: `blk.${l}.ffn_up.weight`, dims: [embd, ff], data: uniform(embd * ff, 0.02) },
      { name: `blk.${l}.ffn_down.weight`, dims: [ff, embd], data: uniform(ff * embd, 0.02) },
    );
  }
  tensors.push({ name: "output_norm.weight", dims: [embd], data: ones(embd) });
  tensors.push({ name: "output.weight", dims: [embd, n], data: output });

  const u32 = (value: number): GgufValue => ({ type: "u32", value });
  const kv: [string, GgufValue][] = [
    ["general.architecture", { type: "string", value: "llama" }],
    ["general.name", { type: "string", value: spec.name }],
    ["general.file_type", u32(0)],
    ["general.alignment", u32(32)],
    ["llama.context_length", u32(contextLength)],
    ["llama.embedding_length", u32(embd)],
    ["llama.block_count", u32(layers)],
    ["llama.feed_forward_length", u32(ff)],
    ["llama.attention.head_count", u32(heads)],
    ["llama.attention.head_count_kv", u32(heads)],
    ["llama.rope.dimension_count", u32(embd / heads)],
    ["llama.attention.layer_norm_rms_epsilon", { type: "f32", value: 1e-5 }],
    ["llama.vocab_size", u32(n)],
    ["tokenizer.ggml.model", { type: "string", value: "llama" }],
    ["tokenizer.ggml.tokens", { type: "string[]", value: vocab.tokens }],
    ["tokenizer.ggml.scores", { type: "f32[]", value: vocab.scores }],
    ["tokenizer.ggml.token_type", { type: "i32[]", value: vocab.types }],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(vocab.imEnd)],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.add_bos_token", { type: "bool", value: true }],
    ["tokenizer.ggml.add_eos_token", { type: "bool", value: false }],
    ["tokenizer.chat_template", { type: "string", value: chatTemplate }],
  ];
  return writeGguf(kv, tensors);
}
