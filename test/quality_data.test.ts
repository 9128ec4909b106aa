// The answer-quality benchmark's data and protocol (bench/quality.ts, bench/data/quality.json): every
// question's answers sit in its gold document and in no other, so a distractor can never make an
// answer count; each question gets its gold document among K distinct distractors, reproducibly.
import { describe, expect, it } from "vitest";
import { contextsFor, isCorrect, loadQualitySet } from "../bench/quality.ts";
import { runtimeName } from "../src/runtime.ts";

describe(`quality benchmark data on ${runtimeName()}`, () => {
  // a digits-only answer ("6215") stands for a number the document writes with commas ("6,215")
  const contains = (doc: string, a: string) => isCorrect(doc, [a]) || (/^\d+$/.test(a) && isCorrect(doc.replaceAll(",", ""), [a]));
  const SIZES = { validation: 120, test: 80, holdout: 120 } as const;

  it.each(["validation", "test", "holdout"] as const)("%s: answers are in the gold document only; gold documents are distinct", (split) => {
    const { documents, questions } = loadQualitySet(split);
    expect(questions.length).toBe(SIZES[split]);
    expect(new Set(questions.map((q) => q.doc)).size).toBe(questions.length);
    for (const q of questions) {
      expect(q.doc >= 0 && q.doc < documents.length, q.question).toBe(true);
      for (const a of q.answers) {
        expect(contains(documents[q.doc], a), `${q.question} / ${a}`).toBe(true);
        expect(documents.filter((d) => contains(d, a)).length, `'${a}' appears in another document`).toBe(1);
        expect(isCorrect(q.question, [a]), `the question gives away '${a}'`).toBe(false);
      }
    }
  });

  it("validation, test and holdout questions use different gold documents", () => {
    const docs = (["validation", "test", "holdout"] as const).flatMap((s) => loadQualitySet(s).questions.map((q) => q.doc));
    expect(new Set(docs).size).toBe(docs.length);
  });

  it("each question's contexts are its gold document and K distinct distractors, in a seeded order", () => {
    for (let qi = 0; qi < 50; qi++) {
      const picked = contextsFor(131, qi % 131, qi, 5);
      expect(picked).toHaveLength(6);
      expect(new Set(picked).size).toBe(6);
      expect(picked).toContain(qi % 131);
      expect(contextsFor(131, qi % 131, qi, 5)).toEqual(picked);
    }
    // the gold document is not always first
    expect(new Set(Array.from({ length: 30 }, (_, qi) => contextsFor(131, 0, qi, 5).indexOf(0))).size).toBeGreaterThan(3);
  });

  it("an answer counts when the generated text contains an expected string, case-insensitively", () => {
    expect(isCorrect("The capital of Vermont is montpelier.", ["Montpelier"])).toBe(true);
    expect(isCorrect("It is Burlington.", ["Montpelier"])).toBe(false);
  });

  it("the demo split finds each question's document", () => {
    const { documents, questions } = loadQualitySet("demo");
    for (const q of questions) expect(q.doc, q.question).toBeGreaterThanOrEqual(0);
    expect(documents.length).toBeGreaterThan(20);
  });
});
