/**
 * `ape eval`'s results and their report: the result types, docs/RESULTS.md (tables, the issue's
 * targets checked plainly, the plots) and PNG plots (plot.ts). A run's tasks are merged into
 * `<out>/plots/results.json` with the ones earlier runs wrote (the same model), so `ape eval rag` then
 * `ape eval icl` give one report.
 *
 * @example
 * ```ts
 * import { renderMarkdown } from "./report.ts";
 * console.log(renderMarkdown({ model: "m", runtime: "node", adapter: "cpu", date: "2026-12-02", temperature: 0.5, scale: 0.9, tasks: {} }).split("\n")[0]);
 * ```
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { lineChartPng } from "./plot.ts";

export interface Variant {
  name: string;
  mode: "sequential" | "parallel" | "ape";
  /** Contexts encoded after the shared prefix (else alone, from position 0). */
  sharedPrefix: boolean;
  temperature: number;
  scale: number;
}

export interface AccuracyPoint {
  x: number;
  correct: number;
  total: number;
  /** null where the variant could not run (e.g. the prompt exceeds the model's positions: `note`). */
  accuracy: number | null;
  note?: string;
}

export interface AccuracyResult {
  task: "rag" | "icl";
  x: "k" | "shots";
  split: string;
  samples: number;
  seconds: number;
  rows: (Variant & { points: AccuracyPoint[] })[];
}

export interface FidelityResult {
  task: "fidelity";
  x: "k";
  split: string;
  samples: number;
  seconds: number;
  rows: (Variant & { points: { x: number; kl: number | null; samples: number }[] })[];
}

export interface EvalReport {
  model: string;
  runtime: string;
  adapter: string;
  date: string;
  temperature: number;
  scale: number;
  tasks: { rag?: AccuracyResult; icl?: AccuracyResult; fidelity?: FidelityResult };
}

const pct = (v: number | null | undefined) => (v === null || v === undefined ? "-" : `${(v * 100).toFixed(1)}`);

function accuracyTable(r: AccuracyResult): string {
  const xs = r.rows[0]?.points.map((p) => p.x) ?? [];
  const head = `| variant | ${xs.map((x) => `${r.x} = ${x}`).join(" | ")} |\n|---|${xs.map(() => "---:").join("|")}|`;
  const lines = r.rows.map((row) => `| ${row.name}${row.mode === "ape" ? ` (T ${row.temperature}, S ${row.scale})` : ""} | ${row.points.map((p) => pct(p.accuracy)).join(" | ")} |`);
  return `${head}\n${lines.join("\n")}`;
}

function fidelityTable(r: FidelityResult): string {
  const xs = r.rows[0]?.points.map((p) => p.x) ?? [];
  const head = `| variant | ${xs.map((x) => `k = ${x}`).join(" | ")} |\n|---|${xs.map(() => "---:").join("|")}|`;
  const lines = r.rows.map((row) => `| ${row.name} | ${row.points.map((p) => (p.kl === null ? "-" : p.kl.toFixed(4))).join(" | ")} |`);
  return `${head}\n${lines.join("\n")}`;
}

const row = <R extends Variant>(r: { rows: R[] }, which: "seq" | "par" | "ape"): R | undefined =>
  r.rows.find((v) =>
    which === "seq" ? v.mode === "sequential" : which === "par" ? v.mode === "parallel" && v.sharedPrefix : v.mode === "ape" && v.scale !== 1
  ) ?? (which === "ape" ? r.rows.find((v) => v.mode === "ape") : undefined);

/** The issue's targets, each met or not, in plain words. */
export function targets(rep: EvalReport): string[] {
  const out: string[] = [];
  const say = (ok: boolean | undefined, text: string) => out.push(`- ${ok === undefined ? "NOT MEASURED" : ok ? "MET" : "NOT MET"}: ${text}`);
  const rag = rep.tasks.rag;
  if (rag) {
    const seq = row(rag, "seq"), par = row(rag, "par"), ape = row(rag, "ape");
    const at = (r: typeof rag.rows[number] | undefined, x: number) => r?.points.find((p) => p.x === x)?.accuracy ?? undefined;
    for (const k of [5, 10]) {
      const s = at(seq, k), a = at(ape, k);
      say(s === undefined || a === undefined ? undefined : a >= 0.95 * s, `RAG k = ${k}: APE ${pct(a)}% >= 95% of sequential ${pct(s)}%`);
    }
    const above = par && ape ? par.points.map((p, i) => [p.accuracy, ape.points[i]?.accuracy] as const) : [];
    say(above.length ? above.every(([p, a]) => p !== null && a !== null && a > p) : undefined, `RAG: APE above plain parallel at every k (${above.map(([p, a]) => `${pct(a)} vs ${pct(p)}`).join("; ")})`);
  }
  const fid = rep.tasks.fidelity;
  if (fid) {
    const par = row(fid, "par"), ape = row(fid, "ape");
    const pairs = par && ape ? par.points.map((p, i) => [p.kl, ape.points[i]?.kl] as const) : [];
    say(pairs.length ? pairs.every(([p, a]) => p !== null && a !== null && a < p) : undefined, `KL to sequential lower for APE than for parallel at every k (${pairs.map(([p, a]) => `${a?.toFixed(3)} vs ${p?.toFixed(3)}`).join("; ")})`);
  }
  const icl = rep.tasks.icl;
  if (icl) {
    const par = row(icl, "par"), ape = row(icl, "ape"), seq = row(icl, "seq");
    const pairs = par && ape ? par.points.map((p, i) => [p.accuracy, ape.points[i]?.accuracy] as const) : [];
    say(pairs.length ? pairs.every(([p, a]) => p !== null && a !== null && a > p) : undefined, `ICL: APE above plain parallel at every shot count (${pairs.map(([p, a]) => `${pct(a)} vs ${pct(p)}`).join("; ")})`);
    const pts = ape?.points ?? [];
    if (pts.length >= 2) {
      const last = pts[pts.length - 1], prev = pts[pts.length - 2];
      say(last.accuracy !== null && prev.accuracy !== null ? last.accuracy >= prev.accuracy : undefined, `ICL: APE still improving or flat at ${last.x} shots (${pct(prev.accuracy)} at ${prev.x} -> ${pct(last.accuracy)})`);
    }
    const skipped = seq?.points.filter((p) => p.accuracy === null).map((p) => p.x) ?? [];
    if (skipped.length) out.push(`- sequential runs out of context at ${skipped.join(", ")} shots (${seq?.points.find((p) => p.accuracy === null)?.note})`);
  }
  return out;
}

export function renderMarkdown(rep: EvalReport): string {
  const parts = [
    "# Results: APE against sequential and parallel encoding",
    "",
    `Written by \`ape eval\` (sdk/commands/eval.ts) on ${rep.date.slice(0, 16).replace("T", " ")} UTC: model \`${rep.model}\`, ${rep.runtime}, ${rep.adapter}; APE's T = ${rep.temperature}, S = ${rep.scale}.`,
    "Rows are the paper's ablation: sequential; parallel with each context encoded alone from position 0 (no shared",
    "prefix: raw layout, the instruction after the contexts); + the shared prefix (plain parallel, T = S = 1);",
    "+ APE's temperature (S = 1); + APE's scale. Accuracies in %. The data sets and protocol: src/eval/data.ts, sdk/commands/eval.ts.",
    "",
    "## Targets",
    "",
    ...targets(rep),
  ];
  const { rag, icl, fidelity } = rep.tasks;
  if (rag) {
    parts.push("", `## RAG (exact match, ${rag.samples} ${rag.split} questions, gold document among k - 1 BM25 / random distractors)`, "", accuracyTable(rag), "", "![RAG accuracy](plots/rag_accuracy.png)");
  }
  if (fidelity) {
    parts.push("", `## Fidelity (mean KL(sequential || mode) of the first answer token, ${fidelity.samples} ${fidelity.split} questions)`, "", fidelityTable(fidelity), "", "![KL to sequential](plots/fidelity_kl.png)");
  }
  if (icl) {
    parts.push("", `## ICL (SpamAssassin spam / ham, ${icl.samples} ${icl.split} e-mails, each demonstration its own context)`, "", accuracyTable(icl), "", "![ICL accuracy](plots/icl_accuracy.png)");
    const notes = [...new Set(icl.rows.flatMap((r) => r.points.filter((p) => p.note).map((p) => `${r.name} at ${p.x} shots: ${p.note}`)))];
    if (notes.length) parts.push("", ...notes.map((n) => `- not run: ${n}`));
  }
  parts.push("", `Times: ${[rag && `rag ${rag.seconds.toFixed(0)} s`, icl && `icl ${icl.seconds.toFixed(0)} s`, fidelity && `fidelity ${fidelity.seconds.toFixed(0)} s`].filter(Boolean).join(", ")}.`, "");
  return parts.join("\n");
}

/** Merges `rep` into `<out>/plots/results.json`, writes the plots and `<out>/RESULTS.md`; returns the paths written. */
export async function writeReport(out: string, rep: EvalReport, opts: { plots?: boolean; merge?: boolean } = {}): Promise<string[]> {
  const plots = join(out, "plots");
  mkdirSync(plots, { recursive: true });
  const jsonPath = join(plots, "results.json");
  let merged = rep;
  if (opts.merge !== false && existsSync(jsonPath)) {
    try {
      const old = JSON.parse(readFileSync(jsonPath, "utf8")) as EvalReport;
      if (old.model === rep.model && old.temperature === rep.temperature && old.scale === rep.scale) merged = { ...rep, tasks: { ...old.tasks, ...rep.tasks } };
    } catch { /* replaced */ }
  }
  const written: string[] = [];
  const put = (path: string, data: string | Uint8Array) => (writeFileSync(path, data), written.push(path));
  put(jsonPath, JSON.stringify(merged, null, 1) + "\n");
  const { rag, icl, fidelity } = opts.plots === false ? {} as EvalReport["tasks"] : merged.tasks;
  const acc = (r: AccuracyResult) => r.rows.flatMap((row) => row.points.filter((p) => p.accuracy !== null).map((p) => ({ series: row.name, x: p.x, y: p.accuracy! })));
  if (rag) put(join(plots, "rag_accuracy.png"), await lineChartPng({ title: "RAG: exact match against contexts", x: "contexts per question (k)", y: "accuracy", points: acc(rag), logX: true, yDomain: [0, 1] }));
  if (icl) put(join(plots, "icl_accuracy.png"), await lineChartPng({ title: "ICL: spam / ham accuracy against shots", x: "demonstrations (shots)", y: "accuracy", points: acc(icl), logX: true, yDomain: [0, 1] }));
  if (fidelity) {
    const points = fidelity.rows.flatMap((row) => row.points.filter((p) => p.kl !== null).map((p) => ({ series: row.name, x: p.x, y: p.kl! })));
    put(join(plots, "fidelity_kl.png"), await lineChartPng({ title: "KL(sequential || mode), first answer token", x: "contexts per question (k)", y: "mean KL (nats)", points, logX: true }));
  }
  put(join(out, "RESULTS.md"), renderMarkdown(merged));
  return written;
}
