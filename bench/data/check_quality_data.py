#!/usr/bin/env python3
"""Check bench/data/quality.json (retrieval-QA accuracy benchmark data).

Rules: schema and counts; every question has its own gold document; every answer string occurs
(case-insensitive substring) in its gold document and in no other document, and not in its question;
a digits-only answer ("6215") may stand for a number written with commas ("6,215"); answers are not short/common enough to match by accident; each proper-noun word names one entity only
(appears in at most one document); the names a question mentions occur in its gold document.
Prints a summary; exits non-zero on any violation.  Usage: python3 bench/data/check_quality_data.py [file]
"""
import json
import os
import re
import sys

PATH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "quality.json")
SPLITS = {"validation": 120, "test": 80, "holdout": 120}
N_DOCS = (320, 340)
DOC_WORDS = (6, 20)
REAL_SHARE = (0.15, 0.25)  # real-world facts (the capital-city documents) per split

# capitalised words that are not entity names: sentence openers, question words, generic nouns of names
STOP = set("""
the a an in on at of and or for to by from with each every about around adult at despite founded spanning
what who which where when how why since is are was were does did do its it this that there
city river rio lake mount mountains island isle isla key bridge tower street town village valley creek
institute foundation company club society museum library school academy university hotel dam tunnel
viaduct footbridge lighthouse spire stadium festival fair feast week night prize radio games robotics
shipping analytics logistics optics textiles guild orchestra theatre seed bank cooperative
""".split())
TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*")

errors = []


def err(msg):
    errors.append(msg)


def names(text):
    """Capitalised words (possessive stripped) that are not in STOP, lower-cased."""
    out = set()
    for tok in TOKEN.findall(text):
        tok = re.sub(r"'s$", "", tok)
        if tok[0].isupper() and tok.lower() not in STOP:
            out.add(tok.lower())
    return out


def word_count(text):
    return len(text.split())


with open(PATH, encoding="utf-8") as f:
    data = json.load(f)

# --- schema -------------------------------------------------------------------------------------
if not isinstance(data, dict) or set(data) != {"documents", *SPLITS}:
    sys.exit(f"FAIL: top level must be an object with exactly documents, {', '.join(SPLITS)} (got {list(data)})")
docs = data["documents"]
if not isinstance(docs, list) or not all(isinstance(d, str) and d.strip() for d in docs):
    sys.exit("FAIL: documents must be a list of non-empty strings")
splits = {name: data[name] for name in SPLITS}
for name, qs in splits.items():
    if not isinstance(qs, list):
        sys.exit(f"FAIL: {name} must be a list")
    for i, q in enumerate(qs):
        ok = (isinstance(q, dict) and set(q) == {"question", "answers", "doc"}
              and isinstance(q["question"], str) and q["question"].strip()
              and isinstance(q["answers"], list) and q["answers"]
              and all(isinstance(a, str) and a.strip() for a in q["answers"])
              and isinstance(q["doc"], int) and not isinstance(q["doc"], bool))
        if not ok:
            sys.exit(f"FAIL: {name}[{i}] must be {{question: str, answers: [str, ...], doc: int}}: {q!r}")

# --- counts -------------------------------------------------------------------------------------
for name, n in SPLITS.items():
    if len(splits[name]) != n:
        err(f"{name} has {len(splits[name])} questions, expected {n}")
if not N_DOCS[0] <= len(docs) <= N_DOCS[1]:
    err(f"{len(docs)} documents, expected {N_DOCS[0]}..{N_DOCS[1]}")

# --- documents ----------------------------------------------------------------------------------
low_docs = [d.lower() for d in docs]
plain_docs = [d.replace(",", "") for d in low_docs]  # numbers without thousands separators
if len(set(low_docs)) != len(docs):
    err("duplicate documents")
for i, d in enumerate(docs):
    n = word_count(d)
    if not DOC_WORDS[0] <= n <= DOC_WORDS[1]:
        err(f"document {i} has {n} words (want {DOC_WORDS[0]}-{DOC_WORDS[1]}): {d!r}")
    if not d.endswith("."):
        err(f"document {i} is not one sentence ending in '.': {d!r}")

# every proper-noun word belongs to one document only (one entity, one name)
owners = {}
for i, d in enumerate(docs):
    for w in names(d):
        owners.setdefault(w, []).append(i)
for w, idx in sorted(owners.items()):
    if len(idx) > 1:
        err(f"name word {w!r} occurs in several documents: " + " | ".join(docs[j] for j in idx))

# --- questions ----------------------------------------------------------------------------------
all_q = [(name, i, q) for name, qs in splits.items() for i, q in enumerate(qs)]
seen_docs, seen_questions = {}, set()
for name, i, q in all_q:
    where = f"{name}[{i}] {q['question']!r}"
    g = q["doc"]
    if not 0 <= g < len(docs):
        err(f"{where}: doc index {g} out of range")
        continue
    if g in seen_docs:
        err(f"{where}: gold document {g} already used by {seen_docs[g]}")
    seen_docs[g] = where
    ql = q["question"].lower()
    if ql in seen_questions:
        err(f"{where}: duplicate question")
    seen_questions.add(ql)
    if not q["question"].rstrip().endswith("?"):
        err(f"{where}: question should end with '?'")
    for a in q["answers"]:
        al = a.lower()
        bare = al.isdigit()  # digits-only: also matches the number written with commas
        if al not in low_docs[g] and not (bare and al in plain_docs[g]):
            err(f"{where}: answer {a!r} not in its gold document {docs[g]!r}")
        others = [j for j in range(len(docs)) if j != g and (al in low_docs[j] or (bare and al in plain_docs[j]))]
        if others:
            err(f"{where}: answer {a!r} also occurs in other documents: " + " | ".join(docs[j] for j in others))
        if al in ql:
            err(f"{where}: question contains its own answer {a!r}")
        digits = re.sub(r"[,.\s]", "", a)
        if digits.isdigit():
            if len(digits) < 3:
                err(f"{where}: numeric answer {a!r} is too small (matches by accident)")
        elif len(a.strip()) < 4:
            err(f"{where}: answer {a!r} is too short (matches by accident)")
    missing = names(q["question"]) - names(docs[g])
    if missing:
        err(f"{where}: names {sorted(missing)} not in its gold document {docs[g]!r}")

# --- mix of real-world and invented facts -------------------------------------------------------
def is_real(i):
    return "capital" in low_docs[i]

for name, qs in splits.items():
    if qs:
        share = sum(is_real(q["doc"]) for q in qs if 0 <= q["doc"] < len(docs)) / len(qs)
        if not REAL_SHARE[0] <= share <= REAL_SHARE[1]:
            err(f"{name}: real-world share {share:.0%} outside {REAL_SHARE[0]:.0%}..{REAL_SHARE[1]:.0%}")

# --- report -------------------------------------------------------------------------------------
gold = set(seen_docs)
distractors = [i for i in range(len(docs)) if i not in gold]
print(f"{os.path.relpath(PATH)}: {len(docs)} documents "
      f"({len(gold)} gold, {len(distractors)} pure distractors; {sum(map(is_real, range(len(docs))))} real-world)")
for name, qs in splits.items():
    real = sum(is_real(q["doc"]) for q in qs if 0 <= q["doc"] < len(docs))
    print(f"  {name}: {len(qs)} questions ({real} real-world, {len(qs) - real} invented)")
wc = [word_count(d) for d in docs]
print(f"  document length: {min(wc)}-{max(wc)} words (mean {sum(wc) / len(wc):.1f}); "
      f"{sum(len(q['answers']) for _, _, q in all_q)} answer strings; {len(owners)} distinct name words")
if errors:
    print(f"FAIL: {len(errors)} violation(s)")
    for e in errors:
        print("  - " + e)
    sys.exit(1)
print("OK")
