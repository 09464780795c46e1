#!/usr/bin/env python3
"""Git history figures: how long indexing 5,000 commits takes, and whether co-change helps
find the files a change touches.

1. Indexing: a synthetic repository of `--commits` commits (5,000 by default; each changes
   one to four of 300 Python files, written with `git fast-import`), indexed keyword-only and
   then with vectors; the history part is timed apart from the code part (`quarry index` on
   the same tree with history already indexed costs the code part alone).
2. Recall@5 of "commit subject -> changed files" on this project's own first-parent history:
   each commit's subject is searched (`quarry search --json`, hybrid) in the current index,
   and the first five distinct files of the hits are compared with the files the commit
   changed. "hybrid + co-change" keeps the first three files of the hits and fills up to five
   with the files that most often changed together with them in the commits before the one
   asked about. Commits that changed more than 20 files or only docs are left out.

  bench/history_bench.py [--commits 5000] [--skip-synthetic]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ask_bench import ROOT, quarry_bin  # noqa: E402


def synthetic_repo(path: Path, commits: int) -> None:
    """A repository of `commits` commits written in one `git fast-import` stream."""
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    rng = random.Random(7)
    files = [f"pkg/module_{i:03d}.py" for i in range(300)]
    contents = {f: f"def f_{i}():\n    return {i}\n" for i, f in enumerate(files)}
    words = "parse cache retry upload config router store export search index token session".split()
    stream = []
    for n in range(commits):
        touched = rng.sample(files, rng.randint(1, 4))
        for f in touched:
            contents[f] += f"\ndef g_{n}():\n    return '{rng.choice(words)}'\n"
        subject = f"{rng.choice(words).capitalize()} {rng.choice(words)} handling in {touched[0]} (change {n})"
        stream.append(f"commit refs/heads/main\nmark :{n + 1}\n"
                      f"author Ann <ann@example.com> {1_600_000_000 + n * 60} +0000\n"
                      f"committer Ann <ann@example.com> {1_600_000_000 + n * 60} +0000\n"
                      f"data {len(subject.encode())}\n{subject}\n")
        if n:
            stream.append(f"from :{n}\n")
        for f in touched:
            data = contents[f].encode()
            stream.append(f"M 100644 inline {f}\ndata {len(data)}\n{contents[f]}\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=path, input="".join(stream).encode(), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=path, check=True)


def timed(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def index_figures(quarry: Path, commits: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "repo"
        synthetic_repo(repo, commits)
        for label, flags in [("keyword-only", ["--keyword-only"]), ("with vectors", ["--rebuild"])]:
            full = timed([str(quarry), "index", *flags], repo)
            history = json.loads(subprocess.run([str(quarry), "status", "--json"], cwd=repo,
                                                capture_output=True, check=True).stdout)["history"]
            # The same tree again with the history removed: the code part, then history alone.
            subprocess.run(["rm", "-rf", str(repo / ".quarry" / "history")], check=True)
            again = timed([str(quarry), "index"], repo)
            code_only = timed([str(quarry), "index"], repo)
            print(f"{label}: {history['commits']} commits; first index {full:.1f} s; "
                  f"history alone {again - code_only:.1f} s (re-index with history {again:.1f} s, "
                  f"without {code_only:.2f} s)")


def project_recall(quarry: Path) -> None:
    log = subprocess.run(["git", "log", "--first-parent", "--no-merges", "--name-only", "--format=%x00%H%x01%s"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    commits = []  # newest first
    for block in log.split("\x00")[1:]:
        head, _, names = block.partition("\n")
        sha, _, subject = head.partition("\x01")
        paths = [p for p in names.split("\n") if p.strip()]
        commits.append((sha, subject, paths))
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        subprocess.run([str(quarry), "index"], cwd=repo, check=True, stdout=subprocess.DEVNULL)
        hybrid_total = cochange_total = 0.0
        asked = 0
        for i, (sha, subject, paths) in enumerate(commits):
            code = [p for p in paths if not p.endswith((".md", ".lock"))]
            if not code or len(paths) > 20:
                continue
            hits = json.loads(subprocess.run([str(quarry), "search", subject, "-k", "30", "--json"], cwd=repo,
                                             capture_output=True, text=True, check=True).stdout)
            files: list[str] = []
            for h in hits:
                if h["path"] and h["path"] not in files:
                    files.append(h["path"])
            hybrid = files[:5]
            # Co-change from the commits before this one only.
            together: Counter[str] = Counter()
            seeds = files[:3]
            for _, _, older in commits[i + 1:]:
                if len(older) > 20 or not any(s in older for s in seeds):
                    continue
                together.update(p for p in older if p not in seeds)
            cochange = seeds + [p for p, _ in together.most_common() if p not in seeds][: 5 - len(seeds)]
            truth = set(code)
            hybrid_total += len(truth & set(hybrid)) / min(len(truth), 5)
            cochange_total += len(truth & set(cochange)) / min(len(truth), 5)
            asked += 1
        print(f"Recall@5 of commit subject -> changed files on this project's history ({asked} commits): "
              f"hybrid {hybrid_total / max(asked, 1):.3f}, hybrid + co-change {cochange_total / max(asked, 1):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=5000)
    parser.add_argument("--skip-synthetic", action="store_true")
    args = parser.parse_args()
    quarry = quarry_bin()
    if not args.skip_synthetic:
        index_figures(quarry, args.commits)
    project_recall(quarry)


if __name__ == "__main__":
    main()
