/**
 * Line charts for `ape eval` as PNG files, rendered headlessly: a Vega-Lite spec compiled to Vega,
 * rendered to SVG by Vega's headless view (no canvas, no browser), then rasterised by resvg (WebAssembly,
 * the same under Deno, Bun and Node) with the DejaVu Sans font from the dejavu-fonts-ttf package. The
 * charting packages are dev dependencies (`ape eval` runs from a clone): they are imported on first use.
 *
 * @example
 * ```ts
 * import { lineChartPng } from "./plot.ts";
 * const png = await lineChartPng({
 *   title: "accuracy", x: "contexts", y: "accuracy",
 *   points: [{ series: "sequential", x: 3, y: 0.8 }, { series: "sequential", x: 5, y: 0.7 }],
 * });
 * console.log(png.byteLength > 1000, png[1] === 0x50); // true true (the PNG signature)
 * ```
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export interface LineChart {
  title: string;
  /** Axis titles. */
  x: string;
  y: string;
  points: { series: string; x: number; y: number }[];
  /** A log-scaled x axis (base 2), e.g. shot counts 4..256. */
  logX?: boolean;
  /** y axis domain (default: from the data). */
  yDomain?: [number, number];
}

const require = createRequire(import.meta.url);
let renderer: Promise<{ svg(spec: object): Promise<string>; png(svg: string): Uint8Array }> | undefined;

function load() {
  renderer ??= (async () => {
    const vega = await import("vega");
    const vl = await import("vega-lite");
    const resvg = await import("@resvg/resvg-wasm");
    const wasm = readFileSync(require.resolve("@resvg/resvg-wasm/index_bg.wasm"));
    await resvg.initWasm(wasm).catch((e: Error) => {
      if (!/already initialized/i.test(e.message)) throw e;
    });
    const fontDir = require.resolve("dejavu-fonts-ttf/package.json").replace(/package\.json$/, "ttf/");
    const fonts = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"].map((f) => new Uint8Array(readFileSync(fontDir + f)));
    return {
      async svg(spec: object) {
        const compiled = vl.compile(spec as never).spec;
        const view = new vega.View(vega.parse(compiled), { renderer: "none" });
        const svg = await view.toSVG();
        view.finalize();
        return svg;
      },
      png(svg: string) {
        const r = new resvg.Resvg(svg, { fitTo: { mode: "zoom", value: 2 }, background: "white", font: { fontBuffers: fonts, defaultFontFamily: "DejaVu Sans", loadSystemFonts: false } });
        const out = r.render().asPng();
        r.free();
        return out;
      },
    };
  })();
  return renderer;
}

/** The Vega-Lite spec of a chart: one line (with points) per series. */
export function lineChartSpec(c: LineChart): object {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: c.title,
    width: 420,
    height: 260,
    config: { font: "DejaVu Sans", background: "white" },
    data: { values: c.points },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "x", type: "quantitative", title: c.x, scale: c.logX ? { type: "log", base: 2 } : { zero: false }, axis: { values: [...new Set(c.points.map((p) => p.x))] } },
      y: { field: "y", type: "quantitative", title: c.y, ...(c.yDomain ? { scale: { domain: c.yDomain } } : {}) },
      color: { field: "series", type: "nominal", title: null, sort: null },
    },
  };
}

/** The chart as SVG text (Vega's headless renderer). */
export async function lineChartSvg(c: LineChart): Promise<string> {
  return (await load()).svg(lineChartSpec(c));
}

/** The chart as a PNG image. */
export async function lineChartPng(c: LineChart): Promise<Uint8Array> {
  const r = await load();
  return r.png(await r.svg(lineChartSpec(c)));
}
