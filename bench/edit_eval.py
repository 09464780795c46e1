#!/usr/bin/env python3
"""`quarry edit` on the edit-task set: tasks passed, LLM calls, tokens, wall time, and
parallel (`--jobs 2`) against sequential (`--jobs 1`) wall time on tasks whose change splits
into independent subtasks.

Each task of fixtures/edit-tasks/*.toml runs on a fresh copy of its fixture or real crate
(seeded with its bug, keyword-indexed) through `quarry edit --yes --json --check CHECK`; a
task on a crate this machine's cargo registry lacks is skipped with a note. Each row also
says whether the plan names every file the task must change, and (with --oracle, which sees
the planning prompt) the share of those files the prompt's uses section names. A task passes when the
run succeeds, the check passes and the task's expectations hold (see that folder's README).

The LLM is QUARRY_LLM_URL / QUARRY_LLM_MODEL when set (any OpenAI-compatible endpoint), else
llama.cpp's server with SmolLM2-135M from `scripts/setup.sh --test`, started here with two
slots. That model is far too small to edit code (FACTS.md: its edits never apply), so with it
the figures measure Quarry's machinery, calls and timing, not edit quality.

`--oracle` answers instead from each task's known-good plan and edits (an OpenAI-compatible
stub started here, every answer delayed by `--latency` seconds like a model): it proves every
task is solvable and its check and expectations right, and times the machinery (retrieval,
apply, re-index, check) and the parallel executor against a model that is always right.

  bench/edit_eval.py [--tasks 01,06] [--max-calls 12] [--answer-tokens 256]
  bench/edit_eval.py --oracle [--latency 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import threading
import tomllib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ask_bench import ROOT, quarry_bin, start_server  # noqa: E402

TASKS = ROOT / "fixtures" / "edit-tasks"


class Oracle:
    """An OpenAI-compatible endpoint answering from the current task's `[oracle]` table."""

    def __init__(self, latency: float):
        self.task: dict = {}
        self.plan_prompt = ""
        oracle = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompt = "\n".join(m.get("content", "") for m in body.get("messages", []))
                time.sleep(latency)
                answer = oracle.answer(prompt)
                reply = json.dumps({
                    "model": "oracle",
                    "choices": [{"message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": len(answer) // 4},
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, prompt: str) -> str:
        oracle = self.task.get("oracle", {})
        if "You are the planner" in prompt:
            self.plan_prompt = prompt
            return oracle.get("plan", "{}")
        marker = prompt.rfind("Your task [")
        if marker >= 0:
            task_id = prompt[marker + len("Your task ["):].split("]", 1)[0]
            return oracle.get("answers", {}).get(task_id, "no answer")
        return "no fix"


def task_source(task: dict) -> Path | None:
    """The tree a task runs on: a fixture, or (`source = "cargo-registry:NAME-VERSION"`) a
    real crate from the cargo registry; None when that crate is not on this machine."""
    source = task.get("source", "")
    if source.startswith("cargo-registry:"):
        found = sorted((Path.home() / ".cargo" / "registry" / "src").glob(f"*/{source.split(':', 1)[1]}"))
        return found[0] if found else None
    return ROOT / "fixtures" / task["fixture"]


def prepare(task: dict, into: Path) -> None:
    source = task_source(task)
    shutil.copytree(source, into,
                    ignore=shutil.ignore_patterns("target", "__pycache__", ".quarry", ".pytest_cache"))
    for seed in task.get("seed", []):
        path = into / seed["path"]
        if "content" in seed:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(seed["content"])
        else:
            text = path.read_text()
            if seed["search"] not in text:
                sys.exit(f"seed of {task['name']} does not match {seed['path']}")
            path.write_text(text.replace(seed["search"], seed["replace"], 1))


def expectations_hold(task: dict, repo: Path) -> bool:
    for expect in task.get("expect", []):
        path = repo / expect["path"]
        text = path.read_text() if path.is_file() else ""
        if "contains" in expect and expect["contains"] not in text:
            return False
        if "absent" in expect and expect["absent"] in text:
            return False
    return True


def uses_reach(task: dict, prompt: str) -> float | None:
    """The share of the files the task must change (its expectations' paths) that the
    planning prompt's uses section names; None without such a section."""
    marker = "Uses of the names this change is about"
    if marker not in prompt:
        return None
    section = prompt.split(marker, 1)[1].split("\n\n", 1)[0]
    paths = sorted({e["path"] for e in task.get("expect", [])})
    return round(sum(p in section for p in paths) / len(paths), 3) if paths else None


def run_task(quarry: Path, task: dict, env: dict, jobs: int, args, oracle=None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / task["name"]
        prepare(task, repo)
        (repo / "quarry.toml").write_text(
            f"[edit]\nanswer_tokens = {args.answer_tokens}\ncontext_tokens = {args.context_tokens}\n")
        subprocess.run([str(quarry), "index", "--keyword-only"], cwd=repo, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        done = subprocess.run(
            [str(quarry), "edit", task["request"], "--yes", "--json", "--check", task["check"],
             "--jobs", str(jobs), "--max-calls", str(args.max_calls)],
            cwd=repo, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        try:
            result = json.loads(done.stdout)
        except json.JSONDecodeError:
            runs = list((repo / ".quarry" / "runs").glob("*/run.json"))
            result = json.loads(runs[0].read_text()) if runs else {}
        usage = result.get("usage") or {}
        reindex_ms = []
        trace = Path(result.get("trace", ""))
        if trace.is_file():
            for line in trace.read_text().splitlines():
                record = json.loads(line)
                if record.get("step") == "reindex":
                    reindex_ms.append(record["detail"]["ms"])
        passed = (result.get("status") == "succeeded" and expectations_hold(task, repo))
        plan_files = {f for t in (result.get("plan") or {}).get("tasks", []) for f in t.get("files", [])}
        expected = {e["path"] for e in task.get("expect", [])}
        return {
            "plan_names_every_file": expected <= plan_files,
            "uses_section_reach": uses_reach(task, oracle.plan_prompt) if oracle else None,
            "task": task["name"], "kind": task["kind"], "jobs": jobs, "passed": passed,
            "status": result.get("status", "error"),
            "tasks_in_plan": len((result.get("plan") or {}).get("tasks", [])),
            "llm_calls": result.get("llm_calls", 0),
            "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
            "wall_s": round(wall, 1),
            "reindex_ms": reindex_ms,
            "error": "" if passed else (result.get("error") or "".join(done.stderr.strip().splitlines()[-1:]))[:160],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", help="comma-separated task number prefixes (default: all)")
    parser.add_argument("--max-calls", type=int, default=12)
    parser.add_argument("--answer-tokens", type=int, default=256)
    parser.add_argument("--context-tokens", type=int, default=800)
    parser.add_argument("--oracle", action="store_true", help="answer from the tasks' known-good edits")
    parser.add_argument("--latency", type=float, default=2.0, help="seconds per oracle answer")
    args = parser.parse_args()

    tasks = []
    for path in sorted(TASKS.glob("*.toml")):
        task = tomllib.loads(path.read_text())
        task["name"] = path.stem
        if args.tasks and not any(path.stem.startswith(p) for p in args.tasks.split(",")):
            continue
        if task_source(task) is None:
            print(f"note: skipping {path.stem}: {task['source']} is not in ~/.cargo/registry/src", flush=True)
            continue
        tasks.append(task)
    quarry = quarry_bin()
    env = dict(os.environ)
    server = None
    oracle = None
    if args.oracle:
        oracle = Oracle(args.latency)
        env.update(QUARRY_LLM_URL=oracle.url, QUARRY_LLM_MODEL="oracle")
    elif not env.get("QUARRY_LLM_URL"):
        server, url = start_server(slots=2)
        env.update(QUARRY_LLM_URL=url, QUARRY_LLM_MODEL="smollm2")
    model = env.get("QUARRY_LLM_MODEL", "?")
    rows = []
    try:
        for task in tasks:
            if oracle:
                oracle.task = task
            rows.append(run_task(quarry, task, env, 2, args, oracle))
            print(json.dumps(rows[-1]), flush=True)
            if task.get("independent"):
                rows.append(run_task(quarry, task, env, 1, args, oracle))
                print(json.dumps(rows[-1]), flush=True)
    finally:
        if server:
            server.kill()

    main_rows = [r for r in rows if r["jobs"] == 2]
    passed = sum(r["passed"] for r in main_rows)
    print(f"\nmodel {model}: {passed}/{len(main_rows)} tasks passed")
    print(f"LLM calls {sum(r['llm_calls'] for r in main_rows)}, "
          f"tokens {sum(r['tokens'] for r in main_rows)}, "
          f"wall {sum(r['wall_s'] for r in main_rows):.1f} s")
    statuses: dict[str, int] = {}
    for r in main_rows:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print("run status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))
    reindex = sorted(ms for r in main_rows for ms in r["reindex_ms"])
    if reindex:
        print(f"re-index after a task (keyword-only): median {reindex[len(reindex) // 2]} ms, "
              f"max {reindex[-1]} ms over {len(reindex)} tasks")
    pairs = [(a, b) for a in rows for b in rows
             if a["task"] == b["task"] and a["jobs"] == 2 and b["jobs"] == 1]
    for parallel, sequential in pairs:
        print(f"{parallel['task']}: --jobs 2 {parallel['wall_s']} s ({parallel['tasks_in_plan']} tasks) "
              f"vs --jobs 1 {sequential['wall_s']} s ({sequential['tasks_in_plan']} tasks)")


if __name__ == "__main__":
    main()
