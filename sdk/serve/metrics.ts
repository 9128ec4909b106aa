/**
 * `/metrics` of `ape serve` in the Prometheus text exposition format (version 0.0.4): request and
 * token counters, a time-to-first-token histogram, and gauges read at scrape time (cache tiers,
 * queue, KV pool). Counters live here; the SDK's cache figures come from `Ape.stats()`.
 *
 * @example
 * ```ts
 * import { Metrics } from "./metrics.ts";
 * const m = new Metrics();
 * m.request("chat", 200);
 * m.ttft(0.35);
 * console.log(m.render([]));
 * ```
 */

/** Upper bounds (seconds) of the time-to-first-token histogram. */
export const TTFT_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface Gauge {
  name: string;
  help: string;
  type: "gauge" | "counter";
  /** One value per label set ({} = no labels). */
  values: { labels?: Record<string, string>; value: number }[];
}

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labels = (l?: Record<string, string>) => {
  const e = Object.entries(l ?? {});
  return e.length === 0 ? "" : `{${e.map(([k, v]) => `${k}="${esc(v)}"`).join(",")}}`;
};
const num = (x: number) => (Number.isFinite(x) ? String(x) : x > 0 ? "+Inf" : x < 0 ? "-Inf" : "NaN");

export class Metrics {
  #requests = new Map<string, { route: string; status: string; n: number }>();
  #tokens = { prompt: 0, completion: 0, context: 0 };
  #ttft = { counts: TTFT_BUCKETS.map(() => 0), sum: 0, n: 0 };
  disconnects = 0;

  request(route: string, status: number): void {
    const k = `${route}|${status}`;
    const e = this.#requests.get(k) ?? { route, status: String(status), n: 0 };
    e.n++;
    this.#requests.set(k, e);
  }

  tokens(prompt: number, completion: number, context: number): void {
    this.#tokens.prompt += prompt;
    this.#tokens.completion += completion;
    this.#tokens.context += context;
  }

  /** One time to first token, in seconds. */
  ttft(seconds: number): void {
    TTFT_BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.#ttft.counts[i]++;
    });
    this.#ttft.sum += seconds;
    this.#ttft.n++;
  }

  /** The exposition text: the counters kept here, then `extra` (gauges read at scrape time). */
  render(extra: Gauge[]): string {
    const out: string[] = [];
    const family = (g: Gauge) => {
      out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} ${g.type}`);
      for (const v of g.values) out.push(`${g.name}${labels(v.labels)} ${num(v.value)}`);
    };
    family({
      name: "apekit_requests_total", help: "HTTP requests answered, by route and status.", type: "counter",
      values: [...this.#requests.values()].map((r) => ({ labels: { route: r.route, status: r.status }, value: r.n })),
    });
    family({
      name: "apekit_tokens_total", help: "Tokens processed: prompt (query), completion (generated), context (cached or encoded contexts).", type: "counter",
      values: Object.entries(this.#tokens).map(([kind, value]) => ({ labels: { kind }, value })),
    });
    family({ name: "apekit_client_disconnects_total", help: "Requests whose client went away before the answer was complete (generation cancelled).", type: "counter", values: [{ value: this.disconnects }] });
    const h = "apekit_time_to_first_token_seconds";
    out.push(`# HELP ${h} Time from a generation request's arrival to its first token.`, `# TYPE ${h} histogram`);
    TTFT_BUCKETS.forEach((b, i) => out.push(`${h}_bucket{le="${b}"} ${this.#ttft.counts[i]}`));
    out.push(`${h}_bucket{le="+Inf"} ${this.#ttft.n}`, `${h}_sum ${this.#ttft.sum}`, `${h}_count ${this.#ttft.n}`);
    for (const g of extra) family(g);
    return out.join("\n") + "\n";
  }
}
