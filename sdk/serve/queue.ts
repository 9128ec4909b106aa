/**
 * The bounded admission queue of `ape serve`: at most `parallel` GPU jobs (generations, context
 * encodes) run at once, at most `maxQueue` wait; a job that finds the queue full is refused at once
 * with 429 and a Retry-After estimated from recent service times. A waiting job whose client goes
 * away leaves the queue (its signal aborts), so disconnected clients never reach the GPU.
 *
 * @example
 * ```ts
 * import { AdmissionQueue } from "./queue.ts";
 * const q = new AdmissionQueue({ parallel: 1, maxQueue: 8 });
 * const slot = await q.acquire();
 * console.log(q.active, q.depth); // 1 0
 * slot.release();
 * ```
 */
import { HttpError } from "./errors.ts";

export interface QueueOptions {
  /** Jobs running at once (default 4: the SDK decodes concurrent generations in one batched step). */
  parallel?: number;
  /** Jobs waiting at most (default 64); one more is answered 429. */
  maxQueue?: number;
}

export interface Slot {
  release(): void;
}

interface Waiter {
  resolve(slot: Slot): void;
  reject(e: unknown): void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class AdmissionQueue {
  readonly parallel: number;
  readonly maxQueue: number;
  #active = 0;
  #waiting: Waiter[] = [];
  /** Exponential moving average of a job's service time (ms). */
  #serviceMs = 1000;
  rejected = 0;

  constructor(opts: QueueOptions = {}) {
    this.parallel = opts.parallel ?? 4;
    this.maxQueue = opts.maxQueue ?? 64;
    if (!Number.isInteger(this.parallel) || this.parallel < 1) throw new RangeError(`parallel must be a positive integer (got ${this.parallel})`);
    if (!Number.isInteger(this.maxQueue) || this.maxQueue < 0) throw new RangeError(`maxQueue must be a non-negative integer (got ${this.maxQueue})`);
  }

  get active(): number {
    return this.#active;
  }

  get depth(): number {
    return this.#waiting.length;
  }

  /** Seconds a client refused now should wait: the queue ahead of it drained at the recent pace. */
  retryAfterSeconds(): number {
    const ahead = this.#waiting.length + this.#active;
    return Math.min(60, Math.max(1, Math.ceil((ahead * this.#serviceMs) / this.parallel / 1000)));
  }

  #slot(): Slot {
    this.#active++;
    const t0 = performance.now();
    let done = false;
    return {
      release: () => {
        if (done) return;
        done = true;
        this.#serviceMs = 0.8 * this.#serviceMs + 0.2 * (performance.now() - t0);
        this.#active--;
        this.#next();
      },
    };
  }

  #next(): void {
    while (this.#active < this.parallel && this.#waiting.length > 0) {
      const w = this.#waiting.shift()!;
      if (w.onAbort) w.signal?.removeEventListener("abort", w.onAbort);
      w.resolve(this.#slot());
    }
  }

  /** A running slot, after waiting in line; 429 HttpError when the line is full; rejects on abort. */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error("aborted"));
    if (this.#active < this.parallel && this.#waiting.length === 0) return Promise.resolve(this.#slot());
    if (this.#waiting.length >= this.maxQueue) {
      this.rejected++;
      const retry = this.retryAfterSeconds();
      return Promise.reject(new HttpError(429, "rate_limit_exceeded", `the server is busy (${this.#active} running, ${this.#waiting.length} waiting): retry after ${retry} s`, {
        code: "queue_full", headers: { "Retry-After": String(retry) },
      }));
    }
    return new Promise<Slot>((resolve, reject) => {
      const w: Waiter = { resolve, reject, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.#waiting.indexOf(w);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(signal.reason ?? new Error("aborted"));
        };
        signal.addEventListener("abort", w.onAbort, { once: true });
      }
      this.#waiting.push(w);
    });
  }
}
