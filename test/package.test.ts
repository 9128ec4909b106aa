// The npm package as users get it: `npm pack` (which runs scripts/build.sh through prepack), then the
// tarball installed into fresh temporary apps, one per runtime, each running the README's SDK example
// (the "## The SDK" code block, verbatim but for the model path and the store folder) on a tiny fixture
// model:
//   Node 20: `npm install <tarball>`, `node app.mjs`; the `ape` bin it installs answers --help and tokenizes
//   Bun:     `bun add <tarball>`, `bun app.ts`
//   Deno:    the unpacked tarball linked from deno.json ("links", no npm involved), `deno check` + `deno run`
//   Deno:    the repository itself linked as a Deno package (its deno.json export and import map)
// Runs under Node's vitest only: it spawns all three runtimes itself, so running it again under Bun's and
// Deno's vitest would test nothing new and add about a minute of CI time each.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtimeName } from "../src/runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const DENO = `${ROOT}node_modules/@deno/linux-x64-glibc/deno`;
const BUN = `${ROOT}node_modules/.bin/bun`;
const MODEL = `${ROOT}fixtures/models/qwen2`;
const PKG = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8"));
const onNode = runtimeName().startsWith("node");

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs a command to completion (asynchronously, so the three apps set up and run side by side). */
function sh(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env: { ...process.env, XDG_RUNTIME_DIR: "/tmp", NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("error", reject);
    p.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(cmd: string, args: string[], cwd: string, env?: Record<string, string>): Promise<string> {
  const r = await sh(cmd, args, cwd, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} (in ${cwd}) exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The README's SDK example for one app: the fixture model instead of the default one, a temporary store. */
function readmeExample(store: string): string {
  const readme = readFileSync(`${ROOT}README.md`, "utf8");
  const block = /## The SDK\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error("README.md: no ts block under '## The SDK'");
  for (const s of [`from "${PKG.name}"`, "loadModel()", "file:///var/cache/apekit"]) {
    if (!block.includes(s)) throw new Error(`README.md's SDK example no longer contains ${s}: update this test`);
  }
  return block.replace("loadModel()", `loadModel(${JSON.stringify(MODEL)})`).replace("file:///var/cache/apekit", `file://${store}`);
}

/** What the example prints: streamed tokens, then the stats object (util.inspect style in every runtime). */
function expectAnswered(out: string, store: string) {
  expect(out).toMatch(/mode: ["']ape["']/);
  expect(out).toMatch(/cacheHits: 2\b/);
  expect(Number(/generatedTokens: (\d+)/.exec(out)?.[1])).toBeGreaterThan(0);
  expect(readdirSync(store).length).toBeGreaterThan(0); // the file store received both contexts
}

describe.skipIf(!onNode)(`the npm package ${PKG.name} (Node-only test: it runs Node, Bun and Deno itself)`, () => {
  let tmp = "", tarball = "", files: string[] = [];

  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), "apekit-pkg-"));
    const packed = JSON.parse(await ok("npm", ["pack", "--json", "--pack-destination", tmp, "--loglevel=error"], ROOT));
    tarball = join(tmp, packed[0].filename);
    files = packed[0].files.map((f: { path: string }) => f.path);
  }, 120_000);
  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("ships compiled JS, types, shaders, the wasm module, and no sources, tests or benchmarks", () => {
    for (const f of ["package.json", "README.md", "dist/sdk/mod.js", "dist/sdk/mod.d.ts", "dist/sdk/cli.js", "dist/src/gpu/shaders.js",
      "dist/wasm/pkg/apekit_wasm.js", "dist/wasm/pkg/apekit_wasm_bg.wasm", "dist/shaders/matvec_f32.wgsl", "dist/examples/data/facts.json"]) {
      expect(files).toContain(f);
    }
    expect(files.filter((f) => f.startsWith("dist/shaders/include/")).length).toBeGreaterThan(0);
    const shaders = readdirSync(`${ROOT}shaders`).filter((f) => f.endsWith(".wgsl"));
    for (const s of shaders) expect(files).toContain(`dist/shaders/${s}`);
    expect(files.filter((f) => !f.startsWith("dist/") && f !== "package.json" && f !== "README.md")).toEqual([]);
    expect(files.filter((f) => /\.ts$/.test(f) && !/\.d\.ts$/.test(f))).toEqual([]);
    expect(files.filter((f) => (f.startsWith("dist/bench/") && f !== "dist/bench/data/quality.json") || f.startsWith("dist/test/"))).toEqual([]);
  });

  it("declares runtime dependencies only, and deno.json maps the same ones", () => {
    const deps = Object.keys(PKG.dependencies);
    for (const dev of ["vitest", "vite", "deno", "bun", "typescript", "binaryen", "@types/node"]) expect(deps).not.toContain(dev);
    for (const cond of ["types", "deno", "bun", "node", "default"]) expect(PKG.exports["."][cond]).toBeDefined();
    const deno = JSON.parse(readFileSync(`${ROOT}deno.json`, "utf8"));
    expect(deno.name).toBe(PKG.name);
    expect(deno.version).toBe(PKG.version);
    for (const [name, version] of Object.entries(PKG.dependencies)) {
      // a dependency added to package.json needs these two lines in deno.json's "imports" too
      expect(deno.imports[name], `deno.json imports ${name}`).toBe(`npm:${name}@${version}`);
      expect(deno.imports[`${name}/`], `deno.json imports ${name}/`).toBe(`npm:/${name}@${version}/`);
    }
  });

  it("runs the README's SDK example in fresh Node, Bun and Deno apps", async () => {
    const app = (name: string) => {
      const dir = join(tmp, name);
      mkdirSync(join(dir, "store"), { recursive: true });
      return dir;
    };
    const node = async () => {
      const dir = app("node-app");
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "node-app", private: true, type: "module" }));
      await ok("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error", tarball], dir);
      expect(existsSync(join(dir, "node_modules/vitest"))).toBe(false); // no devDependencies came along
      writeFileSync(join(dir, "app.mjs"), readmeExample(join(dir, "store")));
      expectAnswered(await ok("node", ["app.mjs"], dir), join(dir, "store"));
      const help = await ok(join(dir, "node_modules/.bin/ape"), ["--help"], dir);
      expect(help).toContain("generate");
      const ids = JSON.parse(await ok(join(dir, "node_modules/.bin/ape"), ["tokenize", "--tokenizer", MODEL, "--text", "hello world", "--json"], dir));
      expect(ids.ids.length).toBeGreaterThan(0);
    };
    const bun = async () => {
      const dir = app("bun-app");
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "bun-app", private: true, type: "module" }));
      await ok(BUN, ["add", "--no-progress", tarball], dir);
      expect(existsSync(join(dir, "node_modules/vitest"))).toBe(false);
      writeFileSync(join(dir, "app.ts"), readmeExample(join(dir, "store")));
      expectAnswered(await ok(BUN, ["app.ts"], dir), join(dir, "store"));
    };
    const denoPackage = async () => {
      const dir = app("deno-app");
      mkdirSync(join(dir, "pkg"));
      await ok("tar", ["xzf", tarball, "-C", join(dir, "pkg"), "--strip-components=1"], dir);
      writeFileSync(join(dir, "deno.json"), JSON.stringify({
        imports: { [PKG.name]: `npm:${PKG.name}@${PKG.version}` }, links: ["./pkg"], nodeModulesDir: "auto",
      }));
      writeFileSync(join(dir, "app.ts"), readmeExample(join(dir, "store")));
      await ok(DENO, ["check", "app.ts"], dir); // the example type-checks against the shipped .d.ts
      expectAnswered(await ok(DENO, ["run", "-A", "app.ts"], dir), join(dir, "store"));
    };
    const denoSource = async () => {
      const dir = app("deno-source-app");
      writeFileSync(join(dir, "deno.json"), JSON.stringify({ imports: { [PKG.name]: `jsr:${PKG.name}@${PKG.version}` }, links: [ROOT] }));
      writeFileSync(join(dir, "app.ts"), readmeExample(join(dir, "store")));
      expectAnswered(await ok(DENO, ["run", "-A", "app.ts"], dir), join(dir, "store"));
    };
    // Installs overlap; the GPU runs are short (tiny model). Deno's two runs go one after the other.
    // Every app finishes (settled) before afterAll removes their folders.
    const results = await Promise.allSettled([node(), bun(), denoPackage().then(denoSource)]);
    for (const r of results) if (r.status === "rejected") throw r.reason;
  }, 180_000);
});
