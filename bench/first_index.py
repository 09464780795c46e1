#!/usr/bin/env python3
"""How soon a first index is searchable, and what searching costs while it is built.

Per corpus, from `quarry index` start on a fresh copy:
  - seconds to the first keyword search that finds a definition in the last file walked
    (the walk is in path order, so this is "the whole tree is searchable by keyword");
  - seconds to the end of the index (full hybrid);
  - hybrid searches during the vector phase: latency, hits, and the note they print;
  - peak RSS of the indexing process;
  - cold `quarry search` p50/p95 (a new process per query) in hybrid and keyword mode,
    and warm hybrid p50/p95 (one process; needs `cargo build --release --examples`);
  - the daemon's RSS when idle.

Corpora (offline):
  django  the Django sdist (see index_bench.py; cached under ~/.cache/quarry/corpora)
  crates  tokio, serde_json, axum and ignore from ~/.cargo/registry/src

Usage: bench/first_index.py [--quarry PATH] [--corpus django|crates|all] [--cold N]
                            [--first-keyword-only]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import DEFINITION, default_quarry, django_source, pick_queries, warm_latency  # noqa: E402

CRATES = ("tokio-1.", "serde_json-1.", "axum-0.8", "ignore-0.4")


def crates_source() -> Path | None:
    """The four crates, newest version of each, linked into one folder."""
    registry = Path.home() / ".cargo" / "registry" / "src"
    found: dict[str, Path] = {}
    for index in registry.glob("*"):
        for crate in index.glob("*"):
            for prefix in CRATES:
                if crate.name.startswith(prefix) and crate.is_dir():
                    if prefix not in found or crate.name > found[prefix].name:
                        found[prefix] = crate
    if len(found) < len(CRATES):
        missing = [p for p in CRATES if p not in found]
        print(f"note: crates corpus skipped; not in the cargo registry: {missing}")
        return None
    out = Path(tempfile.mkdtemp(prefix="quarry-crates-src-"))
    for crate in found.values():
        shutil.copytree(crate, out / crate.name, symlinks=True)
    return out


def last_definition(repo: Path) -> tuple[str, str]:
    """The last source file in path order that defines a function, and that function."""
    files = sorted(
        p.relative_to(repo).as_posix()
        for p in repo.rglob("*")
        if p.is_file() and p.suffix in DEFINITION and not any(s.startswith(".") for s in p.parts)
    )
    for rel in reversed(files):
        text = (repo / rel).read_text(encoding="utf-8", errors="ignore")
        names = DEFINITION[Path(rel).suffix].findall(text)
        if names:
            return rel, names[-1]
    raise SystemExit(f"no definition found under {repo}")


def proc_status_kb(pid: int, field: str) -> int:
    """A `/proc/PID/status` figure in kB (`VmHWM` the peak RSS, `VmRSS` the current); 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def search(quarry: Path, repo: Path, query: str, mode: str) -> tuple[float, list, str, bool]:
    start = time.perf_counter()
    run = subprocess.run(
        [str(quarry), "search", query, "--json", "-k", "10", "--mode", mode, "--root", str(repo)],
        capture_output=True, text=True,
    )
    elapsed = time.perf_counter() - start
    hits = json.loads(run.stdout) if run.returncode == 0 and run.stdout.strip() else []
    return elapsed, hits, run.stderr.strip(), run.returncode == 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def during_index(quarry: Path, repo: Path, last_file: str, ident: str, probe: str,
                 keyword_only_phase: bool = False) -> dict:
    started = time.perf_counter()
    log = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([str(quarry), "index", str(repo)],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    first_keyword = None
    phase_two: list[dict] = []
    peak = 0
    last_probe = 0.0
    while proc.poll() is None:
        peak = max(peak, proc_status_kb(proc.pid, "VmHWM"))
        now = time.perf_counter() - started
        if first_keyword is None:
            _, hits, _, ok = search(quarry, repo, ident, "keyword")
            if ok and any(h.get("path") == last_file for h in hits):
                first_keyword = time.perf_counter() - started
                if keyword_only_phase:
                    proc.send_signal(2)  # Ctrl-C: the run commits what it did and stops
                    proc.wait()
                    break
            time.sleep(0.1)
            continue
        # A hybrid probe loads the model (~0.3 s of CPU): every 30 s keeps the bench from
        # slowing the index it measures.
        if now - last_probe >= 30.0:
            last_probe = now
            elapsed, hits, note, ok = search(quarry, repo, probe, "hybrid")
            if proc.poll() is None:
                phase_two.append({"at_s": round(now, 1), "ms": round(elapsed * 1000), "ok": ok,
                                  "hits": len(hits), "note": note.splitlines()[0] if note else ""})
        time.sleep(0.2)
    summary = proc.stdout.read().strip() if proc.stdout else ""
    log.seek(0)
    errors = log.read().strip()
    if proc.returncode != 0 and not keyword_only_phase:
        raise SystemExit(f"quarry index failed ({proc.returncode}): {errors[-500:]}")
    if first_keyword is None:
        raise SystemExit(f"the index ended before a keyword search found {ident}: {errors[-500:]}")
    return {
        "first_keyword_s": round(first_keyword, 2) if first_keyword else None,
        "full_s": None if keyword_only_phase else round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(peak / 1024),
        "phase_two_searches": phase_two,
        "summary": summary,
    }


def daemon_idle_rss(quarry: Path, repo: Path) -> int | None:
    proc = subprocess.Popen([str(quarry), "daemon", str(repo)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            status = subprocess.run([str(quarry), "status", "--json", "--root", str(repo)],
                                    capture_output=True, text=True)
            if status.returncode == 0 and json.loads(status.stdout).get("daemon"):
                break
            time.sleep(0.2)
        time.sleep(5)
        return round(proc_status_kb(proc.pid, "VmRSS") / 1024)
    finally:
        subprocess.run([str(quarry), "daemon", "--stop", str(repo)], capture_output=True)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench(name: str, source: Path, quarry: Path, cold: int, first_only: bool) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"quarry-first-{name}-"))
    repo = work / "repo"
    shutil.copytree(source, repo, symlinks=True, ignore=shutil.ignore_patterns(".quarry", "target"))
    # The copy's writeback would otherwise run during the index and be charged to it: a
    # user's checkout was not written a second ago.
    os.sync()
    try:
        last_file, ident = last_definition(repo)
        queries = [q for q, _ in pick_queries(repo, 2 * cold)]
        probe = queries[1] if len(queries) > 1 else ident
        result = {"corpus": name, "last_file": last_file, "identifier": ident}
        result.update(during_index(quarry, repo, last_file, ident, probe, first_only))
        if first_only:
            return result
        # The index's own writeback (hundreds of MB just written) would otherwise run
        # under the first cold queries.
        os.sync()
        for mode in ("hybrid", "keyword"):
            times = [search(quarry, repo, q, mode)[0] * 1000 for q in queries[:cold]]
            result[f"cold_{mode}_ms"] = {"p50": round(pct(times, 0.5)), "p95": round(pct(times, 0.95))}
        result["warm_hybrid_ms"] = warm_latency(quarry, repo, queries)
        result["daemon_idle_rss_mb"] = daemon_idle_rss(quarry, repo)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quarry", type=Path, default=default_quarry())
    parser.add_argument("--corpus", choices=["django", "crates", "all"], default="all")
    parser.add_argument("--cold", type=int, default=20, help="cold queries per mode")
    parser.add_argument("--first-keyword-only", action="store_true",
                        help="stop the index (Ctrl-C) once the first keyword search succeeds")
    args = parser.parse_args()
    corpora: list[tuple[str, Path]] = []
    if args.corpus in ("django", "all"):
        corpora.append(("django", django_source()))
    if args.corpus in ("crates", "all"):
        crates = crates_source()
        if crates is not None:
            corpora.append(("crates", crates))
    for name, source in corpora:
        result = bench(name, source, args.quarry, args.cold, args.first_keyword_only)
        print(json.dumps(result, indent=1), flush=True)


if __name__ == "__main__":
    main()
