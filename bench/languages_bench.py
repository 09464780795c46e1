#!/usr/bin/env python3
"""Each language with a grammar on one real corpus: what the chunker and the graph make of it.

Per language it copies the corpus's files of that language (up to --files of them, sorted by
path) into a scratch repository, builds a keyword-only index and prints one table row:

- files and chunks, and the share of the files' lines inside a symbol chunk (a function,
  method, type, ... rather than module code or a line window), from `quarry status --json`;
- definitions: the function, method and type definitions `quarry defs '*'` finds, against
  the count universal-ctags (an independent parser) reports for the same files and kinds;
- keyword index time (one run; wall clock, noisy here by 10-25%);
- refs: for up to --names functions and methods ctags finds defined once and whose name is
  used in 3-15 files, the recall and precision of `quarry refs NAME` + `quarry defs NAME`
  sites (path, line, column) against every occurrence of NAME as an identifier in code, by
  the lexers of `bench/lang_source.py` (comments and strings left out; `rg -w` with them);
- doc -> code retrieval: a second copy of the sample's first --docs-files files with every
  doc comment above a definition blanked (lines kept), a full (embedded) index, and up to --queries queries, each the first
  sentence of a function's or method's doc (not naming it); a query is answered when a hit
  in the top 10 is that definition's chunk. R@10 / MRR@10 for keyword and hybrid search.

Corpora are offline except for three packages fetched once with npm and pip (into --scratch,
by default the bench cache ~/.cache/quarry/corpora/languages); a missing one is skipped with
a note:

  go          Debian golang-1.19-src: /usr/share/go-1.19/src/net/http
  java        Debian openjdk-17-source: java.base/java/util from the JDK's src.zip
  ruby        Debian ruby3.1: /usr/lib/ruby/3.1.0
  php         Debian composer: /usr/share/php/Symfony
  cpp         Debian libboost1.74-dev: /usr/include/boost/asio
  c           the cargo registry's zstd-sys crate: zstd's C library (zstd/lib)
  typescript  rxjs 7 (`npm pack rxjs@7`), its src/
  javascript  lodash-es 4 (`npm pack lodash-es@4`)
  csharp      pythonnet 3.2.1's sdist (pip download), its src/

Usage: bench/languages_bench.py [--quarry BIN] [--files 400] [--names 40] [--queries 30]
                                [--docs-files 150] [--scratch DIR] [--only go,java]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lang_source  # noqa: E402
from index_bench import CACHE, default_quarry  # noqa: E402

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


def unpacked(scratch: Path, name: str, fetch: list[str], archive_glob: str) -> Path | None:
    """`scratch/name`: an npm or PyPI package's source, fetched with its own client and
    unpacked once; None when the client cannot fetch it (offline)."""
    out = scratch / name
    if out.is_dir():
        return out
    archives = sorted(scratch.glob(archive_glob))
    if not archives:
        subprocess.run(fetch, cwd=scratch, capture_output=True)
        archives = sorted(scratch.glob(archive_glob))
    if not archives:
        return None
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        with tarfile.open(archives[-1]) as tar:
            tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        top.rename(out)
    return out


def corpus_dir(lang: str, scratch: Path) -> Path | None:
    registry = Path.home() / ".cargo/registry/src"
    if lang == "typescript":
        root = unpacked(scratch, "rxjs", ["npm", "pack", "rxjs@7"], "rxjs-*.tgz")
        return root / "src" if root else None
    if lang == "javascript":
        return unpacked(scratch, "lodash", ["npm", "pack", "lodash-es@4"], "lodash-es-*.tgz")
    if lang == "csharp":
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "pythonnet==3.2.1", "-d", "."]
        root = unpacked(scratch, "pythonnet", pip, "pythonnet-*.tar.gz")
        return root / "src" if root else None
    candidates = {
        "go": ["/usr/share/go-1.19/src/net/http"],
        "ruby": ["/usr/lib/ruby/3.1.0"],
        "php": ["/usr/share/php/Symfony"],
        "cpp": ["/usr/include/boost/asio"],
        "c": sorted(glob.glob(str(registry / "*/zstd-sys-*/zstd/lib"))),
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


def copy_sample(root: Path, files: list[Path], into: Path) -> None:
    for f in files:
        dest = into / f.relative_to(root)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)


def read_lines(path: Path) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8").split("\n")
    except (UnicodeDecodeError, OSError):
        return None


def quarry_json(quarry: str, repo: Path, *args: str) -> object:
    out = subprocess.run([quarry, *args, "--json"], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"quarry {' '.join(args)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout)


def ctags_tags(repo: Path, lang: str) -> list[dict] | None:
    """universal-ctags' definitions of the kinds counted for `lang`, or None without ctags."""
    if not shutil.which("ctags"):
        return None
    name, kinds = CTAGS[lang]
    out = subprocess.run(
        ["ctags", "-R", "--output-format=json", "--fields=+nK", f"--languages={name}", "-f", "-", "."],
        cwd=repo, capture_output=True, text=True,
    )
    tags = []
    for line in out.stdout.splitlines():
        try:
            tag = json.loads(line)
        except json.JSONDecodeError:
            continue
        if tag.get("_type") == "tag" and tag.get("kind") in kinds:
            tags.append(tag)
    return tags


def is_test_path(path: str) -> bool:
    parts = path.lower().split("/")
    return any(p in ("test", "tests", "spec", "testdata", "__tests__") for p in parts[:-1]) \
        or re.search(r"(_test|_spec|\.test|\.spec|test)\.\w+$", parts[-1]) is not None


# ---------------------------------------------------------------- refs recall

def refs_recall(quarry: str, repo: Path, lang: str, tags: list[dict], count: int) -> dict | None:
    """`quarry refs NAME` + `quarry defs NAME` sites against every identifier occurrence of
    NAME in code (`lang_source.identifiers`), for functions and methods ctags finds defined
    once and whose name is used in 3-15 files."""
    truth: dict[str, set[tuple[str, int, int]]] = {}
    for path in sorted(p for p in repo.rglob("*") if p.is_file() and ".quarry" not in p.parts):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(repo).as_posix()
        for line, col, name in lang_source.identifiers(text, lang):
            truth.setdefault(name, set()).add((rel, line, col))
    defined: dict[str, int] = {}
    for tag in tags:
        if tag["kind"] in ("function", "func", "method", "singletonMethod"):
            defined[tag["name"]] = defined.get(tag["name"], 0) + 1
    names = [
        n for n, times in sorted(defined.items())
        if times == 1 and len(n) >= 4 and re.fullmatch(r"[A-Za-z_$][\w$]*[?!]?", n)
        and not n.lower().startswith("test") and n not in lang_source.RESERVED.get(lang, ())
        and 3 <= len({p for p, _, _ in truth.get(n, ())}) <= 15
    ]
    random.Random(11).shuffle(names)
    names = names[:count]
    if not names:
        return None
    tp = fp = fn = 0
    for name in names:
        found = set()
        for lookup in ("refs", "defs"):
            for site in quarry_json(quarry, repo, lookup, name)["sites"]:
                found.add((site["path"], site["line"], site["column"]))
        expected = truth[name]
        tp, fp, fn = tp + len(found & expected), fp + len(found - expected), fn + len(expected - found)
    return {"names": len(names), "sites": tp + fn,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "precision": tp / (tp + fp) if tp + fp else 1.0}


# ---------------------------------------------------------------- doc -> code retrieval

def doc_queries(repo: Path, lang: str, tags: list[dict], count: int) -> list[dict]:
    """Blanks every doc comment above a definition in `repo` (lines kept) and returns up to
    `count` queries taken from function and method docs: {query, path, line, name}."""
    by_path: dict[str, list[dict]] = {}
    for tag in tags:
        by_path.setdefault(tag["path"], []).append(tag)
    candidates = []
    for rel, file_tags in sorted(by_path.items()):
        lines = read_lines(repo / rel)
        if lines is None:
            continue
        blocks = []
        for tag in sorted(file_tags, key=lambda t: t["line"]):
            block = lang_source.doc_block(lines, tag["line"], lang)
            if block is None:
                continue
            blocks.append(block)
            if tag["kind"] not in ("function", "func", "method", "singletonMethod") or is_test_path(rel):
                continue
            sentence = lang_source.first_sentence(lang_source.doc_text(lines, block), tag["name"])
            if sentence:
                candidates.append({"query": sentence, "path": rel.removeprefix("./"),
                                   "line": tag["line"], "name": tag["name"]})
        if blocks:
            (repo / rel).write_text("\n".join(lang_source.blank_docs(lines, blocks, lang)), encoding="utf-8")
    return random.Random(20261203).sample(candidates, min(count, len(candidates)))


def answers(hit: dict, case: dict) -> bool:
    """The hit is the definition's chunk: its file, covering its line, named by it."""
    last = re.split(r"::|\.|#|\\|:", hit.get("symbol") or "")[-1]
    return hit["path"] == case["path"] and hit["start_line"] <= case["line"] <= hit["end_line"] \
        and last == case["name"]


def retrieval(quarry: str, root: Path, files: list[Path], lang: str, count: int) -> dict | None:
    with tempfile.TemporaryDirectory(prefix=f"quarry-lang-docs-{lang}-") as tmp:
        repo = Path(tmp)
        copy_sample(root, files, repo)
        tags = ctags_tags(repo, lang)
        if tags is None:
            return None
        cases = doc_queries(repo, lang, tags, count)
        if not cases:
            return None
        start = time.perf_counter()
        subprocess.run([quarry, "index"], cwd=repo, check=True, capture_output=True)
        out = {"queries": len(cases), "index_s": time.perf_counter() - start}
        for mode in ("keyword", "hybrid"):
            ranks = []
            for case in cases:
                hits = quarry_json(quarry, repo, "search", case["query"], "-k", "10", "--mode", mode)
                ranks.append(next((i + 1 for i, h in enumerate(hits) if answers(h, case)), None))
            out[mode] = (sum(1 for r in ranks if r) / len(ranks), sum(1 / r for r in ranks if r) / len(ranks))
        return out


# ---------------------------------------------------------------- one language

def measure(quarry: str, lang: str, root: Path, limit: int, names: int) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"quarry-lang-{lang}-") as tmp:
        repo = Path(tmp)
        files = sample(root, lang, limit)
        copy_sample(root, files, repo)
        start = time.perf_counter()
        subprocess.run([quarry, "index", "--keyword-only"], cwd=repo, check=True,
                       capture_output=True)
        seconds = time.perf_counter() - start
        status = quarry_json(quarry, repo, "status")
        counts = status.get("languages", {})
        lines = sum(v.get("lines", 0) for v in counts.values())
        symbol_lines = sum(v.get("symbol_lines", 0) for v in counts.values())
        defs = quarry_json(quarry, repo, "defs", "*", "--path", "**")
        found = sum(1 for s in defs.get("sites", []) if s.get("kind") in QUARRY_DEF_KINDS)
        tags = ctags_tags(repo, lang)
        return {
            "lang": lang,
            "files": len(files),
            "chunks": sum(v.get("chunks", 0) for v in counts.values()),
            "in_symbols": symbol_lines / lines if lines else None,
            "defs": found,
            "ctags": len(tags) if tags is not None else None,
            "seconds": seconds,
            "refs": refs_recall(quarry, repo, lang, tags, names) if tags is not None else None,
            "sample": files,
        }


def fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarry", default=None)
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--names", type=int, default=40, help="names per language for refs recall")
    parser.add_argument("--queries", type=int, default=30, help="doc queries per language (0: skip)")
    parser.add_argument("--docs-files", type=int, default=150,
                        help="files of the sample in the retrieval copy (embedding is the slow part)")
    parser.add_argument("--scratch", default=os.environ.get("QUARRY_BENCH_SCRATCH", str(CACHE / "languages")))
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    quarry = args.quarry or str(default_quarry())
    scratch = Path(args.scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    langs = [l for l in EXTENSIONS if not args.only or l in args.only.split(",")]
    rows = []
    print("| lang | files | chunks | lines in symbols | defs | ctags | keyword index s | refs names | "
          "refs recall | refs precision | doc queries | keyword R@10 / MRR@10 | hybrid R@10 / MRR@10 |")
    print("|---|" + "---|" * 12)
    for lang in langs:
        root = corpus_dir(lang, scratch)
        if root is None:
            print(f"| {lang} | skipped: corpus not found (see this script's docstring) |")
            continue
        r = measure(quarry, lang, root, args.files, args.names)
        docs = retrieval(quarry, root, r["sample"][: args.docs_files], lang, args.queries) if args.queries else None
        refs = r["refs"] or {}
        kw = docs["keyword"] if docs else (None, None)
        hy = docs["hybrid"] if docs else (None, None)
        print(f"| {lang} | {r['files']} | {r['chunks']} | {fmt(r['in_symbols'], '.1%')} | {r['defs']} | "
              f"{r['ctags'] if r['ctags'] is not None else '-'} | {r['seconds']:.2f} | {refs.get('names', '-')} | "
              f"{fmt(refs.get('recall'))} | {fmt(refs.get('precision'))} | {docs['queries'] if docs else '-'} | "
              f"{fmt(kw[0], '.2f')} / {fmt(kw[1])} | {fmt(hy[0], '.2f')} / {fmt(hy[1])} |", flush=True)
        rows.append((r, docs))
    if any(d for _, d in rows):
        ranks = [d for _, d in rows if d]
        total = sum(d["queries"] for d in ranks)
        for mode in ("keyword", "hybrid"):
            r10 = sum(d[mode][0] * d["queries"] for d in ranks) / total
            mrr = sum(d[mode][1] * d["queries"] for d in ranks) / total
            print(f"all {total} doc queries, {mode}: R@10 {r10:.2f}, MRR@10 {mrr:.3f}")


if __name__ == "__main__":
    main()
