import type { FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { addressOf } from "../src/api/guards.ts";

const from = (ip: string) => addressOf({ ip } as FastifyRequest);

describe("the address a limit counts", () => {
  it("is an IPv4 address as it is, and an IPv6 address's /64 (one host holds a whole /64)", () => {
    expect(from("203.0.113.7")).toBe("203.0.113.7");
    expect(from("::ffff:203.0.113.7")).toBe("::ffff:203.0.113.7");
    expect(from("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(from("2001:db8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(from("2001:0db8:0001:0002::9")).toBe("2001:db8:1:2::/64");
    expect(from("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(from("::1")).toBe("0:0:0:0::/64");
    expect(from("2001:db8:1:3::1")).not.toBe(from("2001:db8:1:2::1"));
  });
});
