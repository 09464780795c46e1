#!/usr/bin/env python3
"""Retrieval eval: Recall@1/5/10 and MRR@10 of `quarry search` per mode.

A query set is JSONL, one object per line:

    {"corpus": "django", "query": "...", "path": "django/utils/text.py", "line": 42, "name": "slugify"}
    {"corpus": "rust-shop", "query": "...", "path": "src/store.rs", "symbol": "crate::store::OrderStore::cancel"}

A hit answers a query when it is in `path` and either carries `symbol`, or covers `line` (the
`def`/`fn` line) with a symbol ending in `name` (so a class outline spanning a method does not
count for the method). A "which files" case names `paths` instead: any hit in one of them
answers it (path only), and it is also asked of the file view (`search --files`).

    {"corpus": "quarry-self", "query": "edit: ...", "paths": ["orchestrator/src/edit/apply.rs"]}

Corpora:
  django      the `django/` package of Django's sdist, with every docstring blanked
  crates      a few crates from ~/.cargo/registry/src, with every `///` doc comment blanked
  rust-crates axum, serde_json, ignore and tokio from ~/.cargo/registry/src, docs kept
              (hand-written developer questions, rust_questions.jsonl)
  quarry-self this repository at SELF_PIN (`git archive`): commit subjects before it ask
              for the files they changed (self_history.jsonl)
  rust-shop   fixtures/rust-shop as is        py-notes   fixtures/py-notes as is

Blanking docs keeps line numbers and means keyword search cannot match a docstring query
against the docstring it was taken from: the queries test finding code by what it does.

  bench/eval.py run [--sets bench/eval/*.jsonl] [--modes keyword,vector,hybrid,files]
                    [--stores local,team] [--team-url URL]

`--stores team` indexes and searches a team index (`QUARRY_QDRANT_URL`): BM25 as sparse
vectors and hybrid fused in the store. `--team-url` is a Qdrant server's gRPC URL; by
default an `edge://` directory in the work dir, which runs the same engine in process.
  bench/eval.py make-public            # regenerates bench/eval/{django,crates}_docs.jsonl
  bench/eval.py make-history           # regenerates bench/eval/self_history.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from index_bench import default_quarry, django_source  # noqa: E402

CRATES = ("ignore", "globset", "indicatif", "serde_json", "walkdir", "tempfile")
QUESTION_CRATES = ("axum-0.8.9", "serde_json-1.0.154", "ignore-0.4.35", "tokio-1.54.1")
# The commit the quarry-self corpus is taken at; its history before it makes the queries.
SELF_PIN = "4d71b33f2892db70c74d01eeefb8daaff9efb75d"
MODES = ("keyword", "vector", "hybrid", "files")


# ---------------------------------------------------------------- corpora

def crates_source() -> list[Path]:
    registry = Path.home() / ".cargo" / "registry" / "src"
    found = []
    for name in CRATES:
        versions = sorted(registry.glob(f"*/{name}-[0-9]*"))
        if versions:
            found.append(versions[-1])
    return found


def blank_python_docstrings(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return
    lines = text.split("\n")
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            continue
        body = getattr(node, "body", [])
        if not body or not isinstance(body[0], ast.Expr):
            continue
        value = body[0].value
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        first, last = body[0].lineno - 1, body[0].end_lineno - 1
        indent = re.match(r"\s*", lines[first]).group(0)
        lines[first] = f'{indent}""'
        for i in range(first + 1, last + 1):
            lines[i] = ""
    path.write_text("\n".join(lines), encoding="utf-8")


def blank_rust_docs(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="ignore")
    out = [re.sub(r"^(\s*)///.*$", r"\1//", line) for line in text.split("\n")]
    path.write_text("\n".join(out), encoding="utf-8")


def prepare(corpus: str, work: Path) -> Path:
    """A copy of the corpus to index, docs blanked where the queries came from docs."""
    repo = work / corpus
    if repo.exists():
        return repo
    if corpus == "django":
        shutil.copytree(django_source() / "django", repo / "django")
        for path in repo.rglob("*.py"):
            blank_python_docstrings(path)
    elif corpus == "rust-crates":
        registry = Path.home() / ".cargo" / "registry" / "src"
        for name in QUESTION_CRATES:
            found = sorted(registry.glob(f"*/{name}"))
            if not found:
                raise SystemExit(f"{name} is not in ~/.cargo/registry/src (cargo fetch it)")
            shutil.copytree(found[0], repo / name)
    elif corpus == "quarry-self":
        repo.mkdir(parents=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", SELF_PIN], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(repo)], input=archive.stdout, check=True)
    elif corpus == "crates":
        for crate in crates_source():
            shutil.copytree(crate, repo / crate.name)
        for path in repo.rglob("*.rs"):
            blank_rust_docs(path)
    else:
        shutil.copytree(ROOT / "fixtures" / corpus, repo, ignore=shutil.ignore_patterns("target", "__pycache__"))
    return repo


# ---------------------------------------------------------------- public query sets

def first_sentence(doc: str) -> str | None:
    text = " ".join(doc.strip().split())
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    text = text.replace("``", "").replace("`", "")
    sentence = re.split(r"(?<=[.!?])\s", text, maxsplit=1)[0].rstrip(".")
    words = sentence.split()
    if not 6 <= len(words) <= 30 or sentence.lower().startswith(("deprecated", "see ", "todo")):
        return None
    return sentence


def django_queries(count: int, rng: random.Random) -> list[dict]:
    source = django_source()
    candidates = []
    for path in sorted((source / "django").rglob("*.py")):
        rel = path.relative_to(source).as_posix()
        if "/tests/" in rel or "/migrations/" in rel:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or node.name.startswith("__"):
                continue
            doc = ast.get_docstring(node)
            sentence = first_sentence(doc or "")
            if sentence:
                candidates.append({"corpus": "django", "query": sentence, "path": rel,
                                   "line": node.lineno, "name": node.name})
    return rng.sample(candidates, min(count, len(candidates)))


RUST_FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def crate_queries(count: int, rng: random.Random) -> list[dict]:
    candidates = []
    for crate in crates_source():
        for path in sorted(crate.rglob("*.rs")):
            rel = f"{crate.name}/{path.relative_to(crate).as_posix()}"
            if "/tests/" in f"/{rel}" or "/benches/" in rel or "/examples/" in rel:
                continue
            lines = path.read_text(encoding="utf-8", errors="ignore").split("\n")
            doc: list[str] = []
            for number, line in enumerate(lines, start=1):
                stripped = line.strip()
                if stripped.startswith("///"):
                    doc.append(stripped[3:].strip())
                    continue
                if stripped.startswith("#[") and doc:
                    continue
                match = RUST_FN.match(line)
                if match and doc:
                    sentence = first_sentence(" ".join(d for d in doc if not d.startswith("#")))
                    if sentence and not match.group(1).startswith("test"):
                        candidates.append({"corpus": "crates", "query": sentence, "path": rel,
                                           "line": number, "name": match.group(1)})
                doc = []
    return rng.sample(candidates, min(count, len(candidates)))


# Paths a change description should not be asked to find: docs every commit touches,
# the lockfile, and query sets.
HISTORY_SKIP = re.compile(r"^(README\.md|ARCHITECTURE\.md|Cargo\.lock|bench/eval/.*)$")


def history_queries(max_files: int = 6) -> list[dict]:
    """Each commit before SELF_PIN that changed 1..max_files files still at the pin: its
    subject's first clause asks for those files."""
    present = set(subprocess.run(["git", "-C", str(ROOT), "ls-tree", "-r", "--name-only", SELF_PIN],
                                 capture_output=True, text=True, check=True).stdout.split())
    log = subprocess.run(["git", "-C", str(ROOT), "log", "--first-parent", "--format=%x00%s",
                          "--name-only", f"{SELF_PIN}~1"], capture_output=True, text=True, check=True).stdout
    cases = []
    for entry in log.split("\0")[1:]:
        subject, *names = entry.strip().split("\n")
        paths = sorted({n for n in names if n in present and not HISTORY_SKIP.match(n)})
        query = subject.split("; ")[0].strip()
        if 1 <= len(paths) <= max_files and len(query.split()) >= 4:
            cases.append({"corpus": "quarry-self", "query": query, "paths": paths})
    return cases


# ---------------------------------------------------------------- running

def answers_file(hit: dict, case: dict) -> bool:
    """A file of the file view answers a case when it is (one of) the case's files."""
    return hit["path"] in case.get("paths", [case.get("path")])


def answers(hit: dict, case: dict) -> bool:
    if "paths" in case:
        return hit["path"] in case["paths"]
    if hit["path"] != case["path"]:
        return False
    symbol = hit.get("symbol") or ""
    if "symbol" in case:
        return symbol == case["symbol"]
    last = re.split(r"::|\.", symbol)[-1] if symbol else ""
    return hit["start_line"] <= case["line"] <= hit["end_line"] and last == case["name"]


def run_eval(sets: list[Path], modes: list[str], quarry: Path, keep: Path | None,
             stores: list[str], team_url: str | None) -> None:
    cases = [json.loads(line) for s in sets for line in s.read_text().splitlines() if line.strip()]
    corpora = sorted({c["corpus"] for c in cases})
    work = keep or Path(tempfile.mkdtemp(prefix="quarry-eval-"))
    print(f"{len(cases)} queries over {', '.join(corpora)}; work dir {work}", file=sys.stderr)
    labels = [mode if stores == ["local"] else f"{store} {mode}" for store in stores for mode in modes]
    results: dict[str, dict[str, list[int | None]]] = {label: {} for label in labels}
    for corpus in corpora:
        repo = prepare(corpus, work)
        for store in stores:
            env = dict(os.environ)
            env.pop("QUARRY_QDRANT_URL", None)
            if store == "team":
                env["QUARRY_QDRANT_URL"] = team_url or f"edge://{work.resolve()}/team-store"
            started = time.time()
            index = subprocess.run([str(quarry), "index", str(repo)], capture_output=True, text=True, env=env)
            if index.returncode != 0:
                raise SystemExit(index.stderr.strip())
            print(f"{corpus} ({store}): {index.stdout.strip()} ({time.time() - started:.0f} s)", file=sys.stderr)
            for mode in modes:
                label = mode if stores == ["local"] else f"{store} {mode}"
                ranks = results[label].setdefault(corpus, [])
                # `files` is the file view of a hybrid search, judged by path only.
                view = ["--files", "--mode", "hybrid"] if mode == "files" else ["--mode", mode]
                judge = answers_file if mode == "files" else answers
                for case in (c for c in cases if c["corpus"] == corpus):
                    out = subprocess.run(
                        [str(quarry), "search", case["query"], "--json", "-k", "10", *view,
                         "--root", str(repo)],
                        capture_output=True, text=True, env=env,
                    )
                    if out.returncode != 0:
                        raise SystemExit(out.stderr.strip())
                    hits = json.loads(out.stdout)
                    ranks.append(next((i + 1 for i, h in enumerate(hits) if judge(h, case)), None))
    print_table(results, corpora)
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)


def metrics(ranks: list[int | None]) -> tuple[float, float, float, float]:
    n = len(ranks) or 1
    at = lambda k: sum(1 for r in ranks if r is not None and r <= k) / n  # noqa: E731
    mrr = sum(1 / r for r in ranks if r is not None and r <= 10) / n
    return at(1), at(5), at(10), mrr


def print_table(results: dict, corpora: list[str]) -> None:
    print("| set | queries | mode | R@1 | R@5 | R@10 | MRR@10 |")
    print("|---|---|---|---|---|---|---|")
    for corpus in [*corpora, "all"]:
        for mode, per_corpus in results.items():
            ranks = sum(per_corpus.values(), []) if corpus == "all" else per_corpus.get(corpus, [])
            r1, r5, r10, mrr = metrics(ranks)
            print(f"| {corpus} | {len(ranks)} | {mode} | {r1:.2f} | {r5:.2f} | {r10:.2f} | {mrr:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--sets", nargs="+", type=Path, default=sorted((HERE / "eval").glob("*.jsonl")))
    run.add_argument("--modes", default=",".join(MODES))
    run.add_argument("--quarry", type=Path, default=default_quarry())
    run.add_argument("--keep", type=Path, help="work dir to keep (and reuse) the indexed copies")
    run.add_argument("--stores", default="local", help="local, team, or both: local,team")
    run.add_argument("--team-url", help="the team store (default: an edge:// dir in the work dir)")
    sub.add_parser("make-history")
    make = sub.add_parser("make-public")
    make.add_argument("--django", type=int, default=50)
    make.add_argument("--crates", type=int, default=30)
    args = parser.parse_args()
    if args.command == "make-history":
        cases = history_queries()
        out = HERE / "eval" / "self_history.jsonl"
        out.write_text("".join(json.dumps(c) + "\n" for c in cases))
        print(f"wrote {len(cases)} queries to {out}", file=sys.stderr)
        return
    if args.command == "make-public":
        rng = random.Random(20261126)
        for name, cases in [("django_docs", django_queries(args.django, rng)),
                            ("crates_docs", crate_queries(args.crates, rng))]:
            out = HERE / "eval" / f"{name}.jsonl"
            out.write_text("".join(json.dumps(c) + "\n" for c in cases))
            print(f"wrote {len(cases)} queries to {out}", file=sys.stderr)
        return
    run_eval(args.sets, args.modes.split(","), args.quarry, args.keep, args.stores.split(","), args.team_url)


if __name__ == "__main__":
    main()
