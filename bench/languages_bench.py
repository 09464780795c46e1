#!/usr/bin/env python3
"""Each language with a grammar on one real corpus: what the chunker and the graph make of it.

Per language it copies the corpus's files of that language (up to --files of them, sorted by
path) into a scratch repository, builds a keyword-only index and prints:

- files and chunks (`quarry status --json`);
- definitions: the function, method and type definitions `quarry defs '*'` finds, against
  the count universal-ctags (an independent parser, when installed) reports for the same
  files and kinds;
- keyword index time (one run; wall clock, noisy here by 10-25%).

Corpora are offline and optional; a missing one is skipped with a note saying how to get it:

  go          Debian golang-1.19-src: /usr/share/go-1.19/src/net/http
  java        Debian openjdk-17-source: java.base/java/util from the JDK's src.zip
  ruby        Debian ruby3.1: /usr/lib/ruby/3.1.0
  php         Debian composer: /usr/share/php/Symfony
  cpp         Debian libboost1.74-dev: /usr/include/boost/asio
  c           the cargo registry's onig_sys crate (Oniguruma's C sources)
  typescript  `npm pack rxjs@7`, unpacked under --scratch/rxjs (src/)
  javascript  `npm pack lodash-es@4`, unpacked under --scratch/lodash
  csharp      the pythonnet sdist from PyPI, unpacked under --scratch/pythonnet-*

Usage: bench/languages_bench.py [--quarry BIN] [--files 400] [--scratch DIR] [--only go,java]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import default_quarry  # noqa: E402

EXTENSIONS = {
    "go": (".go",),
    "java": (".java",),
    "ruby": (".rb",),
    "php": (".php",),
    "cpp": (".hpp", ".ipp", ".cpp", ".cc"),
    "c": (".c", ".h"),
    "typescript": (".ts",),
    "javascript": (".js",),
    "csharp": (".cs",),
}

# ctags kinds counted as definitions, per ctags language name; quarry kinds likewise.
CTAGS = {
    "go": ("Go", {"func", "method", "struct", "interface", "methodSpec"}),
    "java": ("Java", {"class", "method", "interface", "enum", "record"}),
    "ruby": ("Ruby", {"class", "module", "method", "singletonMethod"}),
    "php": ("PHP", {"class", "function", "interface", "trait", "enum"}),
    "cpp": ("C++", {"class", "function", "struct", "namespace", "enum", "union"}),
    "c": ("C", {"function", "struct", "enum", "union", "macro"}),
    "typescript": ("TypeScript", {"class", "function", "method", "interface", "enum"}),
    "javascript": ("JavaScript", {"class", "function", "method"}),
    "csharp": ("C#", {"class", "method", "interface", "struct", "enum", "namespace"}),
}
QUARRY_DEF_KINDS = {"function", "method", "class", "type", "trait", "module", "macro"}


def corpus_dir(lang: str, scratch: Path) -> Path | None:
    registry = Path.home() / ".cargo/registry/src"
    candidates = {
        "go": ["/usr/share/go-1.19/src/net/http"],
        "ruby": ["/usr/lib/ruby/3.1.0"],
        "php": ["/usr/share/php/Symfony"],
        "cpp": ["/usr/include/boost/asio"],
        "c": sorted(glob.glob(str(registry / "*/onig_sys-*/oniguruma/src"))),
        "typescript": [str(scratch / "rxjs/src")],
        "javascript": [str(scratch / "lodash")],
        "csharp": sorted(glob.glob(str(scratch / "pythonnet-*/src"))),
    }.get(lang, [])
    if lang == "java":
        out = scratch / "jdk"
        zips = sorted(glob.glob("/usr/lib/jvm/*17*/lib/src.zip"))
        if not (out / "java.base").exists() and zips:
            with zipfile.ZipFile(zips[0]) as z:
                for name in z.namelist():
                    if name.startswith("java.base/java/util/"):
                        z.extract(name, out)
        candidates = [str(out / "java.base/java/util")]
    for c in candidates:
        if Path(c).is_dir():
            return Path(c)
    return None


def sample(root: Path, lang: str, limit: int) -> list[Path]:
    files = sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.name.endswith(EXTENSIONS[lang]) and not p.name.endswith(".d.ts")
    )
    return files[:limit]


def quarry_json(quarry: str, repo: Path, *args: str) -> object:
    out = subprocess.run([quarry, *args, "--json"], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"quarry {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def ctags_count(repo: Path, lang: str) -> int | None:
    if not shutil.which("ctags"):
        return None
    name, kinds = CTAGS[lang]
    out = subprocess.run(
        ["ctags", "-R", "--output-format=json", "--fields=+K", f"--languages={name}", "-f", "-", "."],
        cwd=repo, capture_output=True, text=True,
    )
    count = 0
    for line in out.stdout.splitlines():
        try:
            tag = json.loads(line)
        except json.JSONDecodeError:
            continue
        if tag.get("kind") in kinds:
            count += 1
    return count


def measure(quarry: str, lang: str, root: Path, limit: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"quarry-lang-{lang}-") as tmp:
        repo = Path(tmp)
        files = sample(root, lang, limit)
        for f in files:
            dest = repo / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dest)
        start = time.perf_counter()
        subprocess.run([quarry, "index", "--keyword-only"], cwd=repo, check=True,
                       capture_output=True)
        seconds = time.perf_counter() - start
        status = quarry_json(quarry, repo, "status")
        counts = status.get("languages", {})
        chunks = sum(v.get("chunks", 0) for v in counts.values())
        defs = quarry_json(quarry, repo, "defs", "*", "--path", "**")
        found = sum(1 for s in defs.get("sites", []) if s.get("kind") in QUARRY_DEF_KINDS)
        return {
            "lang": lang,
            "files": len(files),
            "chunks": chunks,
            "defs": found,
            "ctags": ctags_count(repo, lang),
            "seconds": seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarry", default=None)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--scratch", default=os.environ.get("QUARRY_BENCH_SCRATCH", "/tmp/quarry-lang-corpora"))
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    quarry = args.quarry or default_quarry()
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    langs = [l for l in EXTENSIONS if not args.only or l in args.only.split(",")]
    print(f"{'lang':<11} {'files':>5} {'chunks':>6} {'defs':>6} {'ctags':>6} {'index s':>8}")
    for lang in langs:
        root = corpus_dir(lang, scratch)
        if root is None:
            print(f"{lang:<11} skipped: corpus not found (see this script's docstring)")
            continue
        r = measure(quarry, lang, root, args.files)
        ctags = r["ctags"] if r["ctags"] is not None else "-"
        print(f"{lang:<11} {r['files']:>5} {r['chunks']:>6} {r['defs']:>6} {ctags:>6} {r['seconds']:>8.2f}")


if __name__ == "__main__":
    main()
