import { Writable } from "node:stream";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { Progress } from "../src/progress.ts";

function logged() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: "info" }, stream), lines };
}

describe("progress while a model file is hashed and loaded", () => {
  it("on a terminal: one line redrawn in place, then how long the stage took", () => {
    const { log, lines } = logged();
    let drawn = "";
    const progress = new Progress(log, "model.gguf", { isTTY: true } as NodeJS.WriteStream, (t) => (drawn += t));
    progress.update("hashing", 0);
    progress.update("hashing", 0.5); // within the redraw interval: not drawn
    progress.update("hashing", 1);
    progress.update("loading", 0.2);
    progress.end();
    expect(drawn).toContain("\rhashing model.gguf [------------------------]   0%");
    expect(drawn).not.toContain(" 50%");
    expect(drawn).toContain("\rhashing model.gguf [########################] 100%");
    expect(drawn).toMatch(/\r\x1b\[2Khashing model\.gguf: done in \d+\.\d s\n/);
    expect(drawn).toMatch(/\r\x1b\[2Kloading model\.gguf: done in \d+\.\d s\n$/);
    expect(lines).toEqual([]);
  });

  it("elsewhere (a service, a pipe): a log line when each stage starts and one when it ends", () => {
    const { log, lines } = logged();
    let drawn = "";
    const progress = new Progress(log, "model.gguf", { isTTY: false } as NodeJS.WriteStream, (t) => (drawn += t));
    for (const f of [0, 0.25, 0.5, 0.75, 1]) progress.update("hashing", f);
    progress.update("loading", 0);
    progress.update("loading", 1);
    expect(drawn).toBe("");
    expect(lines.map((l) => l.msg)).toEqual([
      "hashing model.gguf",
      "hashing done",
      "loading model.gguf",
      "loading done",
    ]);
    expect(lines[1]).toMatchObject({ stage: "hashing", subject: "model.gguf", seconds: expect.any(Number) });
  });
});
