#!/usr/bin/env python3
"""Learns the retriever's fusion weights and ranking signals from the eval sets.

`quarry search` fuses a BM25 ranking and a vector ranking, then re-ranks the top of the
fused list with cheap signals (retriever/src/rank.rs). The weights of both steps are
learned here, offline, from each query's two raw rankings, so a grid of thousands of
settings costs seconds instead of an eval run each:

  bench/rank_tune.py dump [--work DIR] [--quarry BIN] [--sets ...]
      index each corpus (bench/eval.py's copies, kept in DIR) and store every query's
      hybrid top 200 with each hit's raw keyword and vector rank in DIR/rankings.jsonl
  bench/rank_tune.py fit [--work DIR]
      replays fusion and ranking for every query class and weight setting, prints the
      best weights per class, the per-set table, and a leave-one-set-out check

The replay is the same arithmetic as the retriever (reciprocal rank fusion over the top 50
of each ranking (a candidate that a deeper search dropped as overlapping a better one is
missing from the replay: a small bias towards today's order), the exact-definition lift, overlap removal, then the ranking stage), so
the weights it prints are the ones to put in `fusion.rs` / `rank.rs`; `bench/eval.py run`
then measures the real thing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from eval import answers, metrics, prepare  # noqa: E402
from index_bench import default_quarry  # noqa: E402

DEPTH = 200
CANDIDATES = 50  # what the retriever asks of each ranking for k = 10
K = 10


# ---------------------------------------------------------------- dump

def dump(sets: list[Path], quarry: Path, work: Path) -> None:
    cases = [json.loads(line) for s in sets for line in s.read_text().splitlines() if line.strip()]
    for case, s in zip(cases, [s for s in sets for line in s.read_text().splitlines() if line.strip()]):
        case["set"] = s.stem
    out = work / "rankings.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        for corpus in sorted({c["corpus"] for c in cases}):
            repo = prepare(corpus, work)
            index = subprocess.run([str(quarry), "index", str(repo)], capture_output=True, text=True)
            if index.returncode != 0:
                raise SystemExit(index.stderr.strip())
            print(f"{corpus}: {index.stdout.strip()}", file=sys.stderr)
            for case in (c for c in cases if c["corpus"] == corpus):
                # One deep hybrid search with --explain: every hit carries its raw rank in
                # each retriever, which is all fusion needs.
                run = subprocess.run(
                    [str(quarry), "search", case["query"], "--json", "-k", str(DEPTH),
                     "--mode", "hybrid", "--explain", "--root", str(repo)],
                    capture_output=True, text=True)
                if run.returncode != 0:
                    raise SystemExit(run.stderr.strip())
                record = dict(case, hits=[slim(h) for h in json.loads(run.stdout)])
                f.write(json.dumps(record) + "\n")
    print(f"wrote {out}", file=sys.stderr)


def slim(hit: dict) -> dict:
    out = {key: hit.get(key) for key in
           ("path", "start_line", "end_line", "symbol", "kind", "lang", "test")}
    explain = hit.get("explain") or {}
    out["keyword"] = explain.get("keyword_rank")
    out["vector"] = explain.get("vector_rank")
    return out


# ---------------------------------------------------------------- query classes

QUESTION_WORDS = {"how", "where", "what", "why", "which", "when", "who", "does", "do", "is",
                  "are", "can", "should", "find", "show"}


def is_identifier(query: str) -> bool:
    words = query.split()
    if not 1 <= len(words) <= 4:
        return False
    norm = ".".join(words).replace("::", ".")
    return all(p and re.fullmatch(r"\w+", p) for p in norm.split(".")) and re.search(r"[A-Za-z]", norm)


def query_class(query: str) -> str:
    """identifier, question or phrase: the same rule as `fusion::QueryClass::of`."""
    if is_identifier(query):
        return "identifier"
    words = query.lower().split()
    if query.rstrip().endswith("?") or (words and words[0] in QUESTION_WORDS):
        return "question"
    return "phrase"


# ---------------------------------------------------------------- signals

# The same list as rank.rs's STOP_WORDS.
STOP = {"a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "it", "its", "by", "with",
        "from", "this", "that", "be", "as", "at", "into", "when", "if", "are", "not", "how", "where",
        "what", "why", "which", "does", "do", "can", "should", "we", "i", "you", "there", "get",
        "set", "all", "any", "one", "new", "use", "up", "my", "our", "me", "so", "but", "than",
        "then", "has", "have", "was", "were", "will", "would"}


def words_of(text: str) -> list[str]:
    """Lowercase words, identifiers split at `_` and case changes."""
    parts = re.findall(r"[A-Za-z][a-z]+|[A-Z]+(?![a-z])|[a-z]+|\d+", text)
    return [p.lower() for p in parts]


def stem(word: str) -> str:
    """The same light stemmer as rank.rs's `stem`."""
    if len(word) > 5 and word.endswith("ing"):
        word = word[:-3]
    elif len(word) > 4 and word.endswith("ed"):
        word = word[:-2]
    elif len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zes")):
        word = word[:-2]
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


def query_terms(query: str) -> set[str]:
    return {stem(w) for w in words_of(query) if w not in STOP and len(w) > 1}


def name_match(terms: set[str], hit: dict) -> float:
    """Share of the symbol's last name's words that the query names."""
    symbol = hit.get("symbol") or ""
    name = re.split(r"::|\.|#|:", symbol)[-1] if symbol else ""
    words = {stem(w) for w in words_of(name)}
    if not words or not terms:
        return 0.0
    return len(words & terms) / len(words)


def path_match(terms: set[str], hit: dict) -> float:
    words = {stem(w) for w in words_of(hit["path"].rsplit(".", 1)[0])}
    if not terms:
        return 0.0
    return len(words & terms) / len(terms)


def mentions_tests(query: str) -> bool:
    return "test" in query.lower()


def is_definition(kind: str) -> bool:
    return kind in {"function", "method", "class", "struct", "enum", "trait", "interface", "macro"}


# ---------------------------------------------------------------- replay

def key(hit: dict) -> tuple:
    return (hit["path"], hit["start_line"], hit["end_line"])


def defines(hit: dict, identifier: str) -> bool:
    if not is_definition(hit["kind"]) or not hit.get("symbol"):
        return False
    symbol = re.sub(r"::|[#:\\]", ".", hit["symbol"]).lower()
    return symbol == identifier or symbol.endswith("." + identifier)


def candidates(record: dict) -> list[dict]:
    """The union of both rankings' top CANDIDATES, each with its ranks and signals
    (computed once per record)."""
    if "_candidates" in record:
        return record["_candidates"]
    terms = query_terms(record["query"])
    tests_asked = mentions_tests(record["query"])
    identifier = ".".join(record["query"].split()).replace("::", ".").lower() \
        if is_identifier(record["query"]) else None
    by_key: dict[tuple, dict] = {}
    for hit in record["hits"]:
        ranks = {name: hit[name] if hit[name] and hit[name] <= CANDIDATES else None
                 for name in ("keyword", "vector")}
        if ranks["keyword"] or ranks["vector"]:
            by_key[key(hit)] = {"hit": hit, **ranks}
    for c in by_key.values():
        hit = c["hit"]
        c["name"] = name_match(terms, hit)
        c["path"] = path_match(terms, hit)
        c["test"] = 1.0 if hit.get("test") and not tests_asked else 0.0
        c["nondef"] = 0.0 if is_definition(hit["kind"]) else 1.0
        c["lift"] = identifier is not None and defines(hit, identifier)
    record["_candidates"] = list(by_key.values())
    return record["_candidates"]


def rerank(record: dict, fusion: dict, signals: dict, top: int = CANDIDATES) -> list[dict]:
    """Fusion, the ranking stage and overlap removal, as the retriever does them."""
    cands = candidates(record)
    kw, vw, k = fusion["keyword"], fusion["vector"], fusion["k"]
    fused = []
    for c in cands:
        score = (kw / (k + c["keyword"]) if c["keyword"] else 0.0) + \
                (vw / (k + c["vector"]) if c["vector"] else 0.0)
        fused.append((score, c))
    fused.sort(key=lambda t: (not t[1]["lift"], -t[0]))
    best = max((t[0] for t in fused[:top]), default=1.0) or 1.0
    scored = []
    for position, (score, c) in enumerate(fused):
        value = score / best
        if position < top:
            value += signals["name"] * c["name"] + signals["path"] * c["path"] \
                - signals["test"] * c["test"] - signals["nondef"] * c["nondef"]
        scored.append((c["lift"], value, c["hit"]))
    scored.sort(key=lambda t: (not t[0], -t[1]))
    chosen: list[dict] = []
    for _lift, _value, hit in scored:
        if any(h["path"] == hit["path"] and h["start_line"] <= hit["end_line"]
               and hit["start_line"] <= h["end_line"] for h in chosen):
            continue
        chosen.append(hit)
        if len(chosen) == K:
            break
    return chosen


def rank_of(hits: list[dict], case: dict) -> int | None:
    return next((i + 1 for i, h in enumerate(hits) if answers(h, case)), None)


def score_records(records: list[dict], fusion_by_class: dict, signals: dict) -> list[int | None]:
    return [rank_of(rerank(r, fusion_by_class[query_class(r["query"])], signals), r) for r in records]


def objective(ranks: list[int | None]) -> float:
    _, _, r10, mrr = metrics(ranks)
    return r10 + mrr


def load(work: Path) -> list[dict]:
    path = work / "rankings.jsonl"
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `bench/rank_tune.py dump --work {work}` first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


DEFAULT_FUSION = {"keyword": 1.0, "vector": 1.0, "k": 60.0}
FUSION_GRID = [{"keyword": kw, "vector": 1.0, "k": k}
               for kw in (0.25, 0.4, 0.5, 0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0) for k in (5, 10, 20, 30, 60)]
SIGNAL_GRID = [dict(zip(("name", "path", "test", "nondef"), values)) for values in itertools.product(
    (0.0, 0.05, 0.1, 0.2, 0.3), (0.0, 0.05, 0.1, 0.2), (0.0, 0.05, 0.1, 0.2, 0.4), (0.0, 0.05, 0.1, 0.2))]


def fit_fusion(records: list[dict], signals: dict) -> dict:
    by_class = defaultdict(list)
    for r in records:
        by_class[query_class(r["query"])].append(r)
    chosen = {}
    for cls in ("identifier", "question", "phrase"):
        group = by_class.get(cls, [])
        if not group:
            chosen[cls] = DEFAULT_FUSION
            continue
        chosen[cls] = max(FUSION_GRID, key=lambda w: (objective(
            [rank_of(rerank(r, w, signals), r) for r in group]), -abs(w["keyword"] - 1)))
    return chosen


def fit_signals(records: list[dict], fusion_by_class: dict) -> dict:
    return max(SIGNAL_GRID, key=lambda s: (objective(score_records(records, fusion_by_class, s)),
                                           -sum(s.values())))


def fit(records: list[dict]) -> tuple[dict, dict]:
    signals = {"name": 0.0, "path": 0.0, "test": 0.0, "nondef": 0.0}
    fusion = {c: DEFAULT_FUSION for c in ("identifier", "question", "phrase")}
    for _ in range(2):  # alternate: the two steps interact little
        fusion = fit_fusion(records, signals)
        signals = fit_signals(records, fusion)
    return fusion, signals


def table(records: list[dict], settings: dict[str, tuple[dict, dict]]) -> None:
    sets = sorted({r["set"] for r in records})
    print("| set | queries | setting | R@1 | R@5 | R@10 | MRR@10 |")
    print("|---|---|---|---|---|---|---|")
    for s in [*sets, "all"]:
        group = [r for r in records if s == "all" or r["set"] == s]
        for label, (fusion, signals) in settings.items():
            r1, r5, r10, mrr = metrics(score_records(group, fusion, signals))
            print(f"| {s} | {len(group)} | {label} | {r1:.2f} | {r5:.2f} | {r10:.2f} | {mrr:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump")
    d.add_argument("--sets", nargs="+", type=Path, default=sorted((HERE / "eval").glob("*.jsonl")))
    d.add_argument("--quarry", type=Path, default=default_quarry())
    d.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "quarry-eval")
    f = sub.add_parser("fit")
    f.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "quarry-eval")
    args = parser.parse_args()
    if args.command == "dump":
        dump(args.sets, args.quarry, args.work)
        return
    records = load(args.work)
    baseline = ({c: DEFAULT_FUSION for c in ("identifier", "question", "phrase")},
                {"name": 0.0, "path": 0.0, "test": 0.0, "nondef": 0.0})
    fusion, signals = fit(records)
    print("learned fusion weights per query class (vector weight 1):")
    for cls, w in fusion.items():
        n = sum(1 for r in records if query_class(r["query"]) == cls)
        print(f"  {cls:10} ({n:3} queries): keyword {w['keyword']}, k {w['k']}")
    print(f"learned ranking signals: {signals}")
    fusion_only = (fusion, baseline[1])
    table(records, {"rrf 1:1 k60": baseline, "learned fusion": fusion_only, "fusion + signals": (fusion, signals)})
    print("\nwhat each signal buys (all sets; the learned setting without it):")
    _, _, full10, fullmrr = metrics(score_records(records, fusion, signals))
    for name in signals:
        without = dict(signals, **{name: 0.0})
        _, _, r10, mrr = metrics(score_records(records, fusion, without))
        print(f"  {name:7} {signals[name]:4}: R@10 {r10:.3f} -> {full10:.3f}, MRR {mrr:.3f} -> {fullmrr:.3f}")
    print("\nleave one set out (weights fit on the other sets):")
    held = []
    for s in sorted({r["set"] for r in records}):
        train = [r for r in records if r["set"] != s]
        test = [r for r in records if r["set"] == s]
        fw, sw = fit(train)
        _, _, r10, mrr = metrics(score_records(test, fw, sw))
        _, _, b10, bmrr = metrics(score_records(test, *baseline))
        held.append(s)
        print(f"  {s}: R@10 {b10:.2f} -> {r10:.2f}, MRR {bmrr:.3f} -> {mrr:.3f}")


if __name__ == "__main__":
    main()
