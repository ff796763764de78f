import { execFile } from "node:child_process";
import { cpus, totalmem } from "node:os";
import type { ComputeClass, Hardware } from "@havn/protocol";

export interface Gpu {
  readonly name: string;
  readonly memory_mb: number;
}

/** GPUs as `nvidia-smi` reports them; none when it is missing or fails (CPU-only hosts). */
export function detectNvidiaGpus(timeoutMs = 5_000): Promise<Gpu[]> {
  return new Promise((resolve) => {
    execFile(
      "nvidia-smi",
      ["--query-gpu=name,memory.total", "--format=csv,noheader,nounits"],
      { timeout: timeoutMs },
      (err, stdout) => {
        if (err) return resolve([]);
        resolve(parseNvidiaSmi(stdout));
      },
    );
  });
}

export function parseNvidiaSmi(csv: string): Gpu[] {
  return csv
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const at = line.lastIndexOf(",");
      return { name: line.slice(0, at).trim(), memory_mb: Math.round(Number(line.slice(at + 1).trim())) };
    })
    .filter((g) => g.name.length > 0 && Number.isFinite(g.memory_mb));
}

/**
 * The compute class of seed 002: S is CPU only; M a mid-tier GPU (< 40 GB); L a 40 GB+ GPU;
 * XL several GPUs with 160 GB+ together (dual A100/H100 80 GB).
 */
export function computeClassOf(gpus: readonly Gpu[]): ComputeClass {
  if (gpus.length === 0) return "S";
  const total = gpus.reduce((s, g) => s + g.memory_mb, 0);
  if (gpus.length >= 2 && total >= 160_000) return "XL";
  if (Math.max(...gpus.map((g) => g.memory_mb)) >= 40_000) return "L";
  return "M";
}

export async function detectHardware(): Promise<Hardware> {
  const gpus = await detectNvidiaGpus();
  const cpu = cpus();
  return {
    cpu: { model: (cpu[0]?.model ?? "unknown").trim().slice(0, 256), cores: Math.max(1, cpu.length) },
    memory_mb: Math.round(totalmem() / (1024 * 1024)),
    gpus,
    compute_class: computeClassOf(gpus),
  };
}

/**
 * Power draw assumed for the energy estimate in receipts, in watts: a typical board power for a
 * GPU host, a share of a desktop CPU otherwise. An estimate, labelled as such in the receipt.
 */
export function assumedPowerW(hardware: Hardware, threads: number): number {
  if (hardware.gpus.length > 0) return 250 * hardware.gpus.length;
  return 12 * Math.max(1, threads);
}
