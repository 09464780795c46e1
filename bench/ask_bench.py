#!/usr/bin/env python3
"""`quarry ask` figures with a local model: time to first token, total time, prompt tokens
against the context budget, and how many citations were dropped as not in the context.

Starts llama.cpp's server with SmolLM2-135M (both installed by `scripts/setup.sh --test` into
~/.cache/quarry/llm), indexes copies of the fixtures, and asks the hand-written fixture
questions of bench/eval/fixtures_questions.jsonl (20 by default) with `quarry ask --json`.
The model is tiny: the figures measure Quarry's transport, packing and checking, not the
quality of the answers. "expected in context" says whether the chunk the question is about
was among those sent, i.e. retrieval quality at the packed budget.

  bench/ask_bench.py [--questions 20] [--context-tokens 1000] [--answer-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("QUARRY_CACHE_DIR", Path.home() / ".cache" / "quarry"))
SERVER = Path(os.environ.get("QUARRY_TEST_LLAMA_SERVER", CACHE / "llm" / "bin" / "llama-server"))
MODEL = Path(os.environ.get("QUARRY_TEST_LLM_MODEL", CACHE / "llm" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"))


def quarry_bin() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = Path(os.environ.get("QUARRY_BIN", target / "release" / "quarry"))
    if not binary.is_file():
        sys.exit(f"{binary} is missing: run `cargo build --release` first")
    return binary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(slots: int = 1) -> tuple[subprocess.Popen, str]:
    """llama-server on a free port with `slots` parallel sequences of one thread each."""
    if not SERVER.is_file() or not MODEL.is_file():
        sys.exit("llama-server or the model is missing: run scripts/setup.sh --test")
    port = free_port()
    server = subprocess.Popen(
        [str(SERVER), "-m", str(MODEL), "--host", "127.0.0.1", "--port", str(port),
         "-t", "1", "-c", str(8192 * slots), "-np", str(slots), "--no-webui"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if r.status == 200:
                    return server, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.2)
    server.kill()
    sys.exit("llama-server did not become healthy in 60 s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--context-tokens", type=int, default=1000)
    parser.add_argument("--answer-tokens", type=int, default=128)
    args = parser.parse_args()
    binary = quarry_bin()
    questions = [json.loads(line) for line in (ROOT / "bench/eval/fixtures_questions.jsonl").read_text().splitlines() if line.strip()]
    questions = questions[: args.questions]

    server, url = start_server()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            repos = {}
            for corpus in sorted({q["corpus"] for q in questions}):
                repo = Path(tmp) / corpus
                shutil.copytree(ROOT / "fixtures" / corpus, repo, ignore=shutil.ignore_patterns("target", "__pycache__"))
                (repo / "quarry.toml").write_text(
                    f"[ask]\ncontext_tokens = {args.context_tokens}\nanswer_tokens = {args.answer_tokens}\n")
                subprocess.run([str(binary), "index", str(repo)], check=True, capture_output=True)
                repos[corpus] = repo
            env = dict(os.environ, QUARRY_LLM_URL=url, QUARRY_LLM_MODEL="smollm2")
            for q in questions:
                started = time.time()
                run = subprocess.run([str(binary), "ask", q["query"], "--json"], cwd=repos[q["corpus"]],
                                     env=env, capture_output=True, text=True)
                wall = time.time() - started
                if run.returncode != 0:
                    print(f"FAILED: {q['query']}: {run.stderr.strip()}", file=sys.stderr)
                    continue
                answer = json.loads(run.stdout)
                context_paths = {label.rsplit(":", 1)[0] for label in answer["context"]}
                rows.append({
                    "question": q["query"],
                    "first_token_ms": answer.get("first_token_ms") or 0,
                    "llm_ms": answer["latency_ms"],
                    "wall_ms": wall * 1000,
                    "prompt_tokens": answer["usage"]["prompt_tokens"],
                    "completion_tokens": answer["usage"]["completion_tokens"],
                    "context_tokens": answer["context_tokens"],
                    "budget": answer["context_budget"],
                    "verified": len(answer["citations"]),
                    "unverified": len(answer["unverified"]),
                    "expected_in_context": q["path"] in context_paths,
                    "cited_expected": any(c["path"] == q["path"] for c in answer["citations"]),
                })
    finally:
        server.kill()
        server.wait()

    if not rows:
        sys.exit("no question answered")
    col = lambda key: [r[key] for r in rows]  # noqa: E731
    n = len(rows)
    print(f"quarry ask with SmolLM2-135M on llama.cpp (1 thread), {n} fixture questions, "
          f"context budget {args.context_tokens}, answer cap {args.answer_tokens} tokens")
    print(f"  time to first token   p50 {percentile(col('first_token_ms'), 50) / 1000:.1f} s   p95 {percentile(col('first_token_ms'), 95) / 1000:.1f} s")
    print(f"  LLM call total        p50 {percentile(col('llm_ms'), 50) / 1000:.1f} s   p95 {percentile(col('llm_ms'), 95) / 1000:.1f} s")
    print(f"  quarry ask wall       p50 {percentile(col('wall_ms'), 50) / 1000:.1f} s   p95 {percentile(col('wall_ms'), 95) / 1000:.1f} s")
    print(f"  context tokens (est.) mean {statistics.mean(col('context_tokens')):.0f} of budget {args.context_tokens} "
          f"(max {max(col('context_tokens'))})")
    print(f"  prompt tokens (model) mean {statistics.mean(col('prompt_tokens')):.0f}   max {max(col('prompt_tokens'))}")
    print(f"  answer tokens         mean {statistics.mean(col('completion_tokens')):.0f}")
    verified, unverified = sum(col("verified")), sum(col("unverified"))
    print(f"  citations             {verified + unverified} written, {verified} kept, {unverified} dropped as not in the context")
    print(f"  answers citing        {sum(1 for r in rows if r['verified'])}/{n} cite at least one retrieved chunk")
    print(f"  expected chunk        in context {sum(col('expected_in_context'))}/{n}, cited {sum(col('cited_expected'))}/{n}")


if __name__ == "__main__":
    main()
