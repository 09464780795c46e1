#!/usr/bin/env python3
"""Indexing and keyword-search benchmark on real code.

Prints, per corpus: files, chunks, full keyword-index time, no-change re-index time,
one-file-changed re-index time, `quarry search` latency p50/p95 over 100 queries, the share
of identifier queries whose definition is in the top 10, peak RSS of the full index, and
the index size on disk.

Corpora (prepared offline, cached under ~/.cache/quarry/corpora):
  django  the Django sdist (pip download --no-deps --no-binary :all: django)
  rust    every crate unpacked under ~/.cargo/registry/src

With --vectors it builds the hybrid index and also prints the embedding model's own rate and
the whole pipeline's rate over the same chunks, and warm query latency (one process, model
loaded; needs `cargo build --release --examples`).

Usage: bench/index_bench.py [--quarry PATH] [--corpus django|rust|all] [--queries N] [--vectors]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("QUARRY_BENCH_CACHE", Path.home() / ".cache" / "quarry" / "corpora"))
ROOT = Path(__file__).resolve().parent.parent
# Pinned so figures and the eval's line numbers are comparable between runs.
DJANGO_VERSION = "5.2.19"
DEFINITION = {
    ".py": re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w{3,})\s*\(", re.M),
    ".rs": re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+([A-Za-z_]\w{3,})", re.M),
}


def default_quarry() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    return target / "release" / "quarry"


def django_source() -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    wanted = CACHE / f"django-{DJANGO_VERSION}"
    if wanted.is_dir():
        return wanted
    archives = sorted(CACHE.glob(f"django-{DJANGO_VERSION}.tar.gz"))
    if not archives:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"django=={DJANGO_VERSION}", "-d", str(CACHE)],
            check=True,
        )
        archives = sorted(CACHE.glob(f"django-{DJANGO_VERSION}.tar.gz"))
    with tarfile.open(archives[-1]) as tar:
        tar.extractall(CACHE, filter="data")
    return wanted


def rust_source() -> Path:
    registry = Path.home() / ".cargo" / "registry" / "src"
    dirs = [d for d in registry.glob("*") if d.is_dir()]
    if not dirs:
        raise SystemExit("no crates under ~/.cargo/registry/src: build the project first")
    return dirs[0]


def run_measured(quarry: Path, args: list[str], cwd: Path) -> tuple[float, int, str]:
    """Like run, but reaps the child itself to read its peak RSS."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file:
        proc = subprocess.Popen([str(quarry), *args], cwd=cwd, stdout=out_file, stderr=err_file)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read().decode(), err_file.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"quarry {' '.join(args)} failed: {err.strip()}")
    return elapsed, usage.ru_maxrss, out


def dir_size(path: Path) -> int:
    """Allocated bytes (sparse preallocated files count for what they use)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def pick_queries(repo: Path, count: int, seed: int = 7) -> list[tuple[str, str | None]]:
    """Half identifier queries (name of a defined function, expected in the top 10), half
    word queries made by splitting an identifier into words (no expectation)."""
    names: list[str] = []
    for path in sorted(repo.rglob("*")):
        pattern = DEFINITION.get(path.suffix)
        if pattern is None or ".quarry" in path.parts:
            continue
        try:
            names.extend(pattern.findall(path.read_text(encoding="utf-8", errors="ignore")))
        except OSError:
            continue
    names = sorted(set(n for n in names if not n.startswith("test")))
    rng = random.Random(seed)
    chosen = rng.sample(names, min(count, len(names)))
    queries: list[tuple[str, str | None]] = []
    for i, name in enumerate(chosen):
        if i % 2 == 0:
            queries.append((name, name))
        else:
            words = [w for w in re.split(r"_|(?<=[a-z])(?=[A-Z])", name) if w]
            queries.append((" ".join(words).lower(), None))
    return queries


def warm_latency(quarry: Path, repo: Path, queries: list[str]) -> dict | None:
    """p50/p95 of queries in one warm process (the retriever's query_latency example)."""
    example = quarry.parent / "examples" / "query_latency"
    if not example.is_file():
        return None
    out = subprocess.run([str(example), str(repo), "hybrid"], input="\n".join(queries),
                         capture_output=True, text=True)
    return json.loads(out.stdout) if out.returncode == 0 else None


def bench(name: str, source: Path, quarry: Path, n_queries: int, vectors: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"quarry-bench-{name}-"))
    repo = work / "repo"
    shutil.copytree(source, repo, symlinks=True, ignore=shutil.ignore_patterns(".quarry", "target"))
    try:
        flags = [] if vectors else ["--keyword-only"]
        full, rss, summary = run_measured(quarry, ["index", str(repo), *flags], work)
        status = json.loads(run_measured(quarry, ["status", "--json", "--root", str(repo)], work)[2])
        nochange, _, _ = run_measured(quarry, ["index", str(repo)], work)
        victim = next(p for p in sorted(repo.rglob("*.py" if name == "django" else "*.rs")) if p.stat().st_size > 2000)
        with victim.open("a") as handle:
            handle.write("\n# quarry bench edit\n" if victim.suffix == ".py" else "\n// quarry bench edit\n")
        onefile, _, one_summary = run_measured(quarry, ["index", str(repo)], work)
        if "1 file indexed" not in one_summary:
            raise SystemExit(f"one-file re-index did not index exactly one file: {one_summary}")

        latencies = []
        expected = found = 0
        queries = pick_queries(repo, n_queries)
        for query, definition in queries:
            elapsed, _, out = run_measured(quarry, ["search", query, "--json", "-k", "10"], repo)
            latencies.append(elapsed * 1000)
            if definition:
                expected += 1
                hits = json.loads(out)
                if any((h.get("symbol") or "").split(".")[-1].split("::")[-1] == definition for h in hits):
                    found += 1
        latencies.sort()
        extra = {}
        if vectors:
            run = status["last_run"]
            embedded = run["chunks_embedded"]
            extra = {
                "vectors": status["vectors"],
                "model_chunks_per_s": round(embedded / max(run["embed_ms"], 1) * 1000, 1),
                "pipeline_chunks_per_s": round(embedded / max(run["elapsed_ms"], 1) * 1000, 1),
                "warm": warm_latency(quarry, repo, [q for q, _ in queries]),
            }
        return {
            "corpus": name,
            "mode": "hybrid" if vectors else "keyword",
            "files": status["files"],
            "chunks": status["chunks"],
            "index_s": round(full, 2),
            "reindex_nochange_ms": round(nochange * 1000),
            "reindex_one_file_ms": round(onefile * 1000),
            "query_p50_ms": round(statistics.median(latencies), 1),
            "query_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1], 1),
            "queries": len(latencies),
            "definition_in_top10": f"{found}/{expected}",
            "peak_rss_mib": round(rss / 1024),
            "index_mib": round(dir_size(repo / ".quarry") / 2**20, 1),
            **extra,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarry", type=Path, default=default_quarry())
    parser.add_argument("--corpus", choices=["django", "rust", "all"], default="all")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--vectors", action="store_true",
                        help="build the hybrid index (embeddings) instead of keyword-only")
    args = parser.parse_args()
    if not args.quarry.is_file():
        raise SystemExit(f"{args.quarry} not found: cargo build --release first")
    corpora = {"django": django_source, "rust": rust_source}
    names = list(corpora) if args.corpus == "all" else [args.corpus]
    print(f"quarry: {args.quarry}  cores: {os.cpu_count()}")
    for name in names:
        result = bench(name, corpora[name](), args.quarry, args.queries, args.vectors)
        print(json.dumps(result))


if __name__ == "__main__":
    main()
