/**
 * Loop unrolling in WGSL source, for the loops a kernel marks with a `//#unroll` line: each becomes a
 * copy of its body per iteration, with the loop variable a `let` of that iteration's value.
 *
 * Why: a kernel keeps small private arrays (a query vector, an output accumulator, a row of scores) in
 * registers only where every index is a constant, i.e. where the loops over them are unrolled. Dawn's
 * Tint emits such loops as `for` loops that drivers may unroll (its kernels still gain 1.2-1.3x unrolled in
 * the source on the H200). Deno's wgpu (naga) emits every loop as
 * `loop { if !cond { break } ... }` with an extra iteration counter (wgpu's `force_loop_bounding`, on
 * for every module an application creates), which drivers do not unroll: the arrays go to local
 * memory and the kernel runs several times slower (gfx-rs/wgpu issues 6521 and 7698). Unrolled in the
 * source, the loops reach every compiler as straight-line code.
 *
 * A marked loop must read `for (var v = A; v < B; v++)` (or `v += S`, `<=`), with A, B and S integer
 * expressions of literals and of the module's `const` / `override` declarations (an override takes
 * the pipeline's constant where one is given), at most MAX_UNROLL iterations, and a body that neither
 * assigns v nor uses `break` / `continue`. Anything else is refused with an error naming the loop.
 * Marked loops inside a marked body are unrolled too.
 *
 * @example
 * ```ts
 * import { unrollLoops } from "./unroll.ts";
 * const src = "const N = 3u;\nfn f(a: ptr<function, array<f32, 3>>) -> f32 {\n  var s = 0.0;\n  //#unroll\n  for (var i = 0u; i < N; i++) { s += (*a)[i]; }\n  return s;\n}\n";
 * const out = unrollLoops(src);
 * console.log(out.includes("for (")); // false
 * console.log(out.includes("let i = 2u;")); // true
 * ```
 */

/** The most iterations one marked loop may unroll to. */
export const MAX_UNROLL = 256;

/** The mark: a line of its own, `//#unroll`, indented or not. */
export const UNROLL_MARK = /^[ \t]*\/\/#unroll[ \t]*$/m;

/** Declared integer constants of a module: `const` and `override` (a pipeline constant where given). */
function moduleConstants(code: string, constants: Record<string, number>): Map<string, number> {
  const values = new Map<string, number>();
  const decl = /\b(const|override)\s+(\w+)\s*(?::\s*\w+)?\s*=\s*([^;]+);/g;
  for (const m of code.matchAll(decl)) {
    const [, kind, name, expr] = m;
    if (kind === "override" && name in constants) {
      values.set(name, constants[name]);
      continue;
    }
    const v = evaluate(expr, values);
    if (v !== undefined) values.set(name, v);
  }
  return values;
}

/** An integer expression of literals (1, 2u, 3i), names in `values`, + - * / % and parentheses; undefined if not one. */
export function evaluate(expr: string, values: Map<string, number>): number | undefined {
  const tokens = expr.match(/\d+[ui]?|\w+|[-+*/%()]|\S/g) ?? [];
  let at = 0;
  const fail = Symbol();
  const atom = (): number => {
    const t = tokens[at++];
    if (t === undefined) throw fail;
    if (t === "(") {
      const v = sum();
      if (tokens[at++] !== ")") throw fail;
      return v;
    }
    if (t === "-") return -atom();
    if (/^\d+[ui]?$/.test(t)) return parseInt(t, 10);
    if (/^\w+$/.test(t) && values.has(t)) return values.get(t)!;
    throw fail;
  };
  const product = (): number => {
    let v = atom();
    while (tokens[at] === "*" || tokens[at] === "/" || tokens[at] === "%") {
      const op = tokens[at++], r = atom();
      if (op !== "*" && r === 0) throw fail;
      v = op === "*" ? v * r : op === "/" ? Math.trunc(v / r) : v % r;
    }
    return v;
  };
  const sum = (): number => {
    let v = product();
    while (tokens[at] === "+" || tokens[at] === "-") {
      const op = tokens[at++], r = product();
      v = op === "+" ? v + r : v - r;
    }
    return v;
  };
  try {
    const v = sum();
    return at === tokens.length ? v : undefined;
  } catch (e) {
    if (e === fail) return undefined;
    throw e;
  }
}

/** Index just past the brace block opening at `open` (code[open] === "{"), skipping `//` comments. */
function blockEnd(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    const ch = code[i];
    if (ch === "/" && code[i + 1] === "/") {
      const nl = code.indexOf("\n", i);
      if (nl < 0) break;
      i = nl;
    } else if (ch === "{") depth++;
    else if (ch === "}" && --depth === 0) return i + 1;
  }
  return -1;
}

/** Unrolls every `//#unroll`-marked loop of `code` (see the module docs); `kernel` names it in errors. */
export function unrollLoops(code: string, constants: Record<string, number> = {}, kernel = "kernel"): string {
  if (!UNROLL_MARK.test(code)) return code;
  const values = moduleConstants(code, constants);
  const header = /^\s*for\s*\(\s*var\s+(\w+)\s*(?::\s*(u32|i32))?\s*=\s*([^;]+);\s*(\w+)\s*(<=?)\s*([^;]+);\s*(?:(\w+)\s*\+\+|(\w+)\s*\+=\s*([^)]+))\s*\)\s*\{/;
  let out = code;
  for (let guard = 0; guard < 10_000; guard++) {
    const found = UNROLL_MARK.exec(out);
    if (!found) return out;
    const mark = found.index;
    const lineEnd = out.indexOf("\n", mark);
    if (lineEnd < 0) throw new Error(`${kernel}: a //#unroll line ends the source`);
    const rest = out.slice(lineEnd + 1);
    const m = header.exec(rest);
    const where = `${kernel}: the loop marked //#unroll at line ${out.slice(0, mark).split("\n").length}`;
    if (!m) throw new Error(`${where} is not 'for (var v = A; v < B; v++) {' (or v += S)`);
    const [whole, v, type, startExpr, condVar, cmp, endExpr, incVar1, incVar2, stepExpr] = m;
    if (condVar !== v || (incVar1 ?? incVar2) !== v) throw new Error(`${where} tests or steps another variable than '${v}'`);
    const start = evaluate(startExpr, values), end = evaluate(endExpr, values);
    const step = stepExpr === undefined ? 1 : evaluate(stepExpr, values);
    if (start === undefined || end === undefined || step === undefined || step <= 0) {
      throw new Error(`${where}: bounds '${startExpr.trim()}', '${endExpr.trim()}'${stepExpr ? `, step '${stepExpr.trim()}'` : ""} are not constant integers`);
    }
    const open = lineEnd + 1 + whole.length - 1;
    const close = blockEnd(out, open);
    if (close < 0) throw new Error(`${where}: its body's braces do not match`);
    const body = out.slice(open + 1, close - 1);
    const bodyCode = body.replace(/\/\/[^\n]*/g, "");
    if (/\b(break|continue)\b/.test(bodyCode)) throw new Error(`${where}: its body uses break or continue`);
    if (new RegExp(`\\b${v}\\s*(\\+\\+|--|[-+*/%&|^]?=(?!=))`).test(bodyCode)) throw new Error(`${where}: its body assigns '${v}'`);
    const values_: number[] = [];
    for (let k = start; cmp === "<" ? k < end : k <= end; k += step) {
      values_.push(k);
      if (values_.length > MAX_UNROLL) throw new Error(`${where}: more than ${MAX_UNROLL} iterations`);
    }
    // the variable's type: declared, or the start literal's (2u: u32; 2 or 2i: i32, as WGSL infers a var of it)
    const literal = /^-?\d+([ui]?)$/.exec(startExpr.trim());
    if (!type && !literal) throw new Error(`${where}: give '${v}' a type (its start '${startExpr.trim()}' is not a literal)`);
    const suffix = (type ?? (literal![1] === "u" ? "u32" : "i32")) === "u32" ? "u" : "i";
    const copies = values_.map((k) => `{ let ${v} = ${k}${suffix};${body}}`).join(" ");
    const indent = whole.length - whole.trimStart().length;
    out = out.slice(0, mark) + out.slice(lineEnd + 1, lineEnd + 1 + indent) + copies + out.slice(close);
  }
  throw new Error(`${kernel}: too many //#unroll loops`);
}
