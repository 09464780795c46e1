#!/usr/bin/env python3
"""The code graph on real code: how complete `quarry refs` is, how much of a rename's reach
the edit planner sees, and what the graph costs.

Per corpus it prints:

- refs vs ground truth: for up to 50 names (functions defined once, used in 3-15 files), the
  precision and recall of `quarry refs NAME` + `quarry defs NAME` sites against every
  occurrence of the name as an identifier in code. The ground truth is independent of
  tree-sitter: Python files go through the standard `tokenize` module (NAME tokens, so
  comments and strings, f-strings included, are left out); Rust files through a small lexer
  here that skips line, block (nested) and doc comments, string, raw string, byte and char
  literals and lifetimes. A site is (path, line, byte column).
- planner reach: for up to 30 of those names, `quarry edit "rename NAME to NAME_v2
  everywhere, updating every caller" --dry-run` against a stub LLM that records the planning
  prompt; the share of the files using NAME (ground truth) whose path appears in that
  prompt, and the share of requests where every one does.
- cost: `quarry refs` cold-process latency (p50/p95 over 20 runs), the keyword-only index
  time and the keyword index's size; with --baseline BIN (a quarry built without the graph)
  the same index time and size for it.

Corpora (offline): django (the pinned sdist, as bench/index_bench.py), rust (the cargo
registry's crates under ~/.cargo/registry/src; --rust-crates N of them, the largest first).

Usage: bench/graph_bench.py [--quarry BIN] [--baseline BIN] [--corpus django|rust|all]
       [--names 50] [--plans 30] [--rust-crates 6]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tokenize
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from index_bench import default_quarry, dir_size, django_source  # noqa: E402

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PY_DEF = re.compile(r"^\s*(?:async\s+)?def\s+([A-Za-z_]\w{3,})\s*\(", re.M)
RS_DEF = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_]\w{3,})", re.M)


# --- ground truth ---------------------------------------------------------------------------

def python_names(text: str) -> list[tuple[int, int, str]]:
    """(line, byte column 1-based, name) of every NAME token."""
    out = []
    lines = text.splitlines(keepends=True)
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME:
                row, col = tok.start
                prefix = lines[row - 1][:col] if row - 1 < len(lines) else ""
                out.append((row, len(prefix.encode()) + 1, tok.string))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        pass
    return out


def rust_names(text: str) -> list[tuple[int, int, str]]:
    """(line, byte column 1-based, name) of every identifier outside comments and literals."""
    data = text.encode()
    out = []
    i, n, line, line_start = 0, len(data), 1, 0

    def newline_count(a: int, b: int) -> None:
        nonlocal line, line_start
        for k in range(a, b):
            if data[k] == 10:
                line += 1
                line_start = k + 1

    while i < n:
        c = data[i]
        if c == 10:
            line += 1
            line_start = i + 1
            i += 1
        elif data.startswith(b"//", i):
            j = data.find(b"\n", i)
            i = n if j < 0 else j
        elif data.startswith(b"/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if data.startswith(b"/*", j):
                    depth, j = depth + 1, j + 2
                elif data.startswith(b"*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            newline_count(i, j)
            i = j
        elif c in b"rb" and re.match(rb"(?:br|r)#*\"", data[i:i + 260] or b""):
            m = re.match(rb"(?:br|r)(#*)\"", data[i:])
            end = data.find(b"\"" + m.group(1), i + len(m.group(0)))
            j = n if end < 0 else end + 1 + len(m.group(1))
            newline_count(i, j)
            i = j
        elif c == 34 or (c == 98 and i + 1 < n and data[i + 1] == 34):  # "..." or b"..."
            j = i + (2 if c == 98 else 1)
            while j < n and data[j] != 34:
                j += 2 if data[j] == 92 else 1
            newline_count(i, j)
            i = j + 1
        elif c == 39:  # char literal or lifetime
            m = re.match(rb"'(?:\\.|\\u\{[0-9a-fA-F]+\}|[^\\'\n]|[\xc0-\xff][\x80-\xbf]+)'", data[i:i + 16])
            if m:
                i += len(m.group(0))
            else:
                i += 1
                while i < n and (chr(data[i]).isalnum() or data[i] == 95):
                    i += 1
        elif chr(c).isalpha() or c == 95:
            j = i
            while j < n and (chr(data[j]).isalnum() or data[j] == 95 or data[j] >= 128):
                j += 1
            word = data[i:j].decode(errors="replace")
            if word.startswith("r#"):
                word = word[2:]
            out.append((line, i - line_start + 1, word))
            i = j
        else:
            i += 1
    return out


def source_files(root: Path, suffix: str) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{suffix}") if ".quarry" not in p.parts and p.is_file())


def truth_index(root: Path, suffix: str) -> dict[str, list[tuple[str, int, int]]]:
    """Every identifier occurrence in code, by name: (path, line, column)."""
    lex = python_names if suffix == ".py" else rust_names
    index: dict[str, list[tuple[str, int, int]]] = {}
    for path in source_files(root, suffix):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(root).as_posix()
        for line, col, name in lex(text):
            index.setdefault(name, []).append((rel, line, col))
    return index


def pick_names(root: Path, suffix: str, truth: dict, count: int, seed: int = 11) -> list[str]:
    """Functions defined once in the corpus and used in 3-15 files."""
    pattern = PY_DEF if suffix == ".py" else RS_DEF
    defined: dict[str, int] = {}
    for path in source_files(root, suffix):
        try:
            for name in pattern.findall(path.read_text(encoding="utf-8", errors="ignore")):
                defined[name] = defined.get(name, 0) + 1
        except OSError:
            continue
    keep = []
    for name, times in sorted(defined.items()):
        if times != 1 or name.startswith("test") or name.startswith("__"):
            continue
        files = {p for p, _, _ in truth.get(name, [])}
        if 3 <= len(files) <= 15:
            keep.append(name)
    random.Random(seed).shuffle(keep)
    return keep[:count]


# --- quarry ----------------------------------------------------------------------------------

def quarry_json(quarry: Path, repo: Path, args: list[str]) -> dict:
    out = subprocess.run([str(quarry), *args, "--json"], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"quarry {' '.join(args)}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def refs_quality(quarry: Path, repo: Path, truth: dict, names: list[str]) -> dict:
    tp = fp = fn = 0
    worst = []
    for name in names:
        found = set()
        for lookup in ("refs", "defs"):
            for site in quarry_json(quarry, repo, [lookup, name])["sites"]:
                found.add((site["path"], site["line"], site["column"]))
        expected = set(truth.get(name, []))
        hit = len(found & expected)
        tp, fp, fn = tp + hit, fp + len(found - expected), fn + len(expected - found)
        recall = hit / len(expected) if expected else 1.0
        worst.append((recall, name, sorted(expected - found)[:3], sorted(found - expected)[:3]))
    worst.sort()
    return {
        "names": len(names),
        "sites_expected": tp + fn,
        "precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
        "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0,
        "worst": [{"name": n, "recall": round(r, 3), "missed": m, "extra": e} for r, n, m, e in worst[:3]],
    }


class PlanStub:
    """An OpenAI-compatible endpoint that records prompts and answers a one-task plan."""

    def __init__(self) -> None:
        self.prompts: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = "\n".join(m.get("content") or "" for m in body.get("messages", []))
                stub.prompts.append(prompt)
                if "You are the planner" in prompt:
                    answer = json.dumps({"tasks": [{"id": "t1", "description": "rename",
                                                    "files": [], "new_files": ["RENAME.md"], "depends_on": []}]})
                else:
                    answer = "SUMMARY: nothing\n"
                if body.get("stream"):
                    events = [{"choices": [{"delta": {"content": answer}}]},
                              {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}]
                    data = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
                    kind = "text/event-stream"
                else:
                    data = json.dumps({"choices": [{"message": {"role": "assistant", "content": answer}}],
                                       "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
                    kind = "application/json"
                raw = data.encode()
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


def planner_reach(quarry: Path, repo: Path, truth: dict, names: list[str]) -> dict:
    stub = PlanStub()
    env = dict(os.environ, QUARRY_LLM_URL=stub.url, QUARRY_LLM_MODEL="stub",
               XDG_CONFIG_HOME=str(repo / ".no-user-config"))
    seen = total = complete = 0
    for name in names:
        stub.prompts.clear()
        request = f"rename {name} to {name}_v2 everywhere, updating every caller"
        subprocess.run([str(quarry), "edit", request, "--dry-run", "--yes", "--json"], cwd=repo,
                       env=env, capture_output=True, text=True)
        prompt = next((p for p in stub.prompts if "You are the planner" in p), "")
        files = {p for p, _, _ in truth.get(name, [])}
        shown = {f for f in files if f in prompt}
        seen, total = seen + len(shown), total + len(files)
        complete += shown == files
    return {
        "requests": len(names),
        "file_recall": round(seen / total, 4) if total else 1.0,
        "every_file": round(complete / len(names), 4) if names else 1.0,
    }


def cost(quarry: Path, repo: Path, names: list[str], baseline: Path | None) -> dict:
    def index_time(binary: Path) -> tuple[float, int]:
        shutil.rmtree(repo / ".quarry", ignore_errors=True)
        start = time.perf_counter()
        subprocess.run([str(binary), "index", "--keyword-only"], cwd=repo, check=True, capture_output=True)
        return time.perf_counter() - start, dir_size(repo / ".quarry" / "keyword")

    figures: dict = {}
    if baseline:
        times = [index_time(baseline) for _ in range(2)]
        figures["baseline_index_s"] = round(min(t for t, _ in times), 2)
        figures["baseline_keyword_mb"] = round(times[-1][1] / 1e6, 1)
    times = [index_time(quarry) for _ in range(2)]
    figures["index_s"] = round(min(t for t, _ in times), 2)
    figures["keyword_mb"] = round(times[-1][1] / 1e6, 1)
    latencies = []
    for i in range(20):
        name = names[i % len(names)] if names else "main"
        start = time.perf_counter()
        subprocess.run([str(quarry), "refs", name, "--json"], cwd=repo, check=True, capture_output=True)
        latencies.append((time.perf_counter() - start) * 1000)
    latencies.sort()
    figures["refs_p50_ms"] = round(statistics.median(latencies), 1)
    figures["refs_p95_ms"] = round(latencies[int(len(latencies) * 0.95) - 1], 1)
    return figures


def rust_corpus(into: Path, crates: int) -> Path:
    """The largest `crates` crates of the cargo registry, copied side by side."""
    registry = Path.home() / ".cargo" / "registry" / "src"
    found = [d for r in registry.glob("*") for d in r.iterdir() if d.is_dir()]
    sized = sorted(found, key=lambda d: -sum(1 for _ in d.rglob("*.rs")))
    # Families of crates share code (windows-*, the same crate at two versions): keep one each.
    chosen, families = [], set()
    for crate in sized:
        family = re.sub(r"-\d.*$", "", crate.name).split("-")[0]
        if family in families or sum(1 for _ in crate.rglob("*.rs")) > 400:
            continue
        families.add(family)
        chosen.append(crate)
        if len(chosen) == crates:
            break
    root = into / "rust"
    for crate in chosen:
        shutil.copytree(crate, root / crate.name, ignore=shutil.ignore_patterns("target"))
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quarry", type=Path, default=default_quarry())
    parser.add_argument("--baseline", type=Path, help="a quarry without the graph, for the cost")
    parser.add_argument("--corpus", choices=["django", "rust", "all"], default="all")
    parser.add_argument("--names", type=int, default=50)
    parser.add_argument("--plans", type=int, default=30)
    parser.add_argument("--rust-crates", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        corpora = []
        if args.corpus in ("django", "all"):
            repo = scratch / "django"
            shutil.copytree(django_source(), repo, ignore=shutil.ignore_patterns(".quarry"))
            corpora.append(("django", repo, ".py"))
        if args.corpus in ("rust", "all"):
            corpora.append(("rust", rust_corpus(scratch, args.rust_crates), ".rs"))
        for label, repo, suffix in corpora:
            truth = truth_index(repo, suffix)
            names = pick_names(repo, suffix, truth, args.names)
            figures = {"corpus": label, **cost(args.quarry, repo, names, args.baseline)}
            figures["refs"] = refs_quality(args.quarry, repo, truth, names)
            figures["planner"] = planner_reach(args.quarry, repo, truth, names[: args.plans])
            print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
