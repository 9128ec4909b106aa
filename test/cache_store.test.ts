import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createServer } from "node:net";
import { openStore, type KvStore } from "../src/cache/store.ts";
import { runtimeName } from "../src/runtime.ts";

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) b[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return b;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function behavesAsAStore(name: string, open: () => Promise<KvStore>) {
  describe(`${name} store on ${runtimeName()}`, () => {
    let store: KvStore;
    beforeAll(async () => { store = await open(); });
    afterAll(async () => { await store?.close(); });

    it("puts, gets, lists and deletes, byte for byte", async () => {
      const a = bytes(1000, 1), b = bytes(9 * 1024 * 1024 + 17, 2); // b spans several Redis chunks
      await store.put("entry-a", a);
      await store.put("entry-b", b);
      expect(await store.get("entry-a")).toEqual(a);
      const gotB = await store.get("entry-b");
      expect(gotB?.byteLength).toBe(b.byteLength);
      expect(Buffer.compare(Buffer.from(gotB!), Buffer.from(b))).toBe(0);
      expect(await store.get("missing")).toBeUndefined();
      const listed = await store.list();
      expect(listed.map((e) => e.key)).toEqual(expect.arrayContaining(["entry-a", "entry-b"]));
      expect(listed.find((e) => e.key === "entry-b")?.bytes).toBe(b.byteLength);
      await store.delete("entry-a");
      expect(await store.get("entry-a")).toBeUndefined();
    });

    it("refuses keys that are not content hashes", async () => {
      await expect(store.put("../escape", new Uint8Array(1))).rejects.toThrow(/not a valid key/);
      await expect(store.get("a/b")).rejects.toThrow(/not a valid key/);
    });
  });
}

behavesAsAStore("memory", () => openStore("memory:"));

const dir = mkdtempSync(join(tmpdir(), "apekit-store-"));
behavesAsAStore("file", () => openStore(pathToFileURL(dir).href));

describe(`file store shared by several processes on ${runtimeName()}`, () => {
  it("concurrent writers and readers never see a torn entry, and no temp files remain", async () => {
    const shared = mkdtempSync(join(tmpdir(), "apekit-shared-"));
    const url = pathToFileURL(shared).href;
    const script = `
      import { openStore } from ${JSON.stringify(pathToFileURL(join(process.cwd(), "src/cache/store.ts")).href)};
      const s = await openStore(${JSON.stringify(url)});
      const me = Number(process.argv[2]);
      for (let i = 0; i < 30; i++) {
        const v = new Uint8Array(200000).fill((me * 31 + i) & 255);
        await s.put("same-key", v);
        const got = await s.get("same-key");
        if (!got || got.length !== 200000 || got.some((x) => x !== got[0])) { console.log("TORN"); process.exit(3); }
      }
    `;
    const file = join(shared, "writer.ts");
    (await import("node:fs")).writeFileSync(file, script);
    // writers run TypeScript directly: under Deno with Deno, else with Bun (Node 20 cannot strip types)
    const isDeno = !!(globalThis as { Deno?: unknown }).Deno;
    const exe = isDeno ? process.execPath : join(process.cwd(), "node_modules/.bin/bun");
    const args = isDeno ? ["run", "-A", file] : [file];
    const kids: ChildProcess[] = [0, 1, 2].map((i) => spawn(exe, [...args, String(i)], { stdio: "pipe" }));
    const codes = await Promise.all(kids.map((k) => new Promise<number>((r) => k.on("exit", (c) => r(c ?? -1)))));
    expect(codes).toEqual([0, 0, 0]);
    expect(readdirSync(shared).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    rmSync(shared, { recursive: true, force: true });
  });
});

const redisServer = spawnSync("sh", ["-c", "command -v redis-server"]).status === 0;
let redis: ChildProcess | undefined;
let redisPort = 0;
describe.skipIf(!redisServer)("redis", () => {
  beforeAll(async () => {
    redisPort = await freePort();
    redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
    for (let i = 0; i < 50; i++) {
      try {
        const s = await openStore(`redis://127.0.0.1:${redisPort}`);
        await s.close();
        break;
      } catch { await new Promise((r) => setTimeout(r, 100)); }
    }
  });
  afterAll(async () => {
    if (!redis || redis.exitCode !== null) return;
    const exited = new Promise((r) => redis!.on("exit", r));
    redis.kill("SIGTERM");
    await exited; // leave no server behind
  });
  behavesAsAStore("redis", () => openStore(`redis://127.0.0.1:${redisPort}`));
  it("a Redis that is not there is a clear error", async () => {
    await expect(openStore(`redis://127.0.0.1:${await freePort()}`)).rejects.toThrow(/cannot connect to Redis/);
  });
});
