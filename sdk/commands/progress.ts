/**
 * A progress bar for the CLI: drawn on stderr when it is a terminal, silent otherwise (so piped or
 * --json output stays clean).
 *
 * @example
 * ```ts
 * import { progressBar } from "./progress.ts";
 * const bar = progressBar("caching");
 * bar(3, 10); bar(10, 10);
 * ```
 */
import process from "node:process";

export function progressBar(label: string): (done: number, total: number) => void {
  const tty = Boolean((process.stderr as { isTTY?: boolean }).isTTY);
  return (done, total) => {
    if (!tty || total <= 0) return;
    const width = 30, filled = Math.round((done / total) * width);
    process.stderr.write(`\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${done}/${total}`);
    if (done >= total) process.stderr.write("\n");
  };
}
