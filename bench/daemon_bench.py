#!/usr/bin/env python3
"""`quarry daemon` figures: save-to-searchable latency, absorbing a big checkout, idle cost,
and query latency through the daemon's socket against a cold `quarry search`.

Corpora (copied into a temp folder, never touched in place):
  fixtures    fixtures/rust-shop + fixtures/py-notes as one repository, hybrid index
              (embeddings on): the save-to-searchable and query figures with the model warm
  django      the `django/` package of Django's sdist (bench/index_bench.py fetches it),
              keyword-only: the same figures on a 2,700-file tree, plus a 2,000-file checkout

Save-to-searchable: write a file holding a new identifier, then poll the daemon's socket with
a keyword search for it every 5 ms until it is found; 50 saves, one every 300 ms.

  bench/daemon_bench.py [--corpus fixtures|django|all] [--saves 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("QUARRY_CACHE_DIR", Path.home() / ".cache" / "quarry"))
DJANGO_VERSION = "5.2.19"


def quarry_bin() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    binary = Path(os.environ.get("QUARRY_BIN", target / "release" / "quarry"))
    if not binary.is_file():
        sys.exit(f"{binary} is missing: run `cargo build --release` first")
    return binary


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class DaemonSocket:
    """One connection to the daemon, speaking its JSON-lines protocol."""

    def __init__(self, repo: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(repo / ".quarry" / "daemon.sock"))
        self.file = self.sock.makefile("rwb")

    def call(self, request: dict) -> dict:
        self.file.write((json.dumps({"v": 1, **request}) + "\n").encode())
        self.file.flush()
        return json.loads(self.file.readline())

    def search(self, query: str, mode: str = "keyword") -> list[dict]:
        answer = self.call({"type": "search", "request": {
            "query": query, "k": 5, "lang": None, "kind": None, "path": None, "mode": mode, "explain": False}})
        return answer.get("hits", [])


def start_daemon(binary: Path, repo: Path) -> subprocess.Popen:
    daemon = subprocess.Popen([str(binary), "daemon"], cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            status = DaemonSocket(repo).call({"type": "status"})
            if status.get("updates", 0) >= 1:
                return daemon
        except OSError:
            pass
        time.sleep(0.1)
    daemon.kill()
    sys.exit("the daemon did not finish its first update")


def stop_daemon(binary: Path, repo: Path, daemon: subprocess.Popen) -> None:
    subprocess.run([str(binary), "daemon", "--stop"], cwd=repo, capture_output=True)
    try:
        daemon.wait(timeout=60)
    except subprocess.TimeoutExpired:
        daemon.kill()


def save_to_searchable(repo: Path, folder: str, ext: str, saves: int) -> list[float]:
    client = DaemonSocket(repo)
    latencies = []
    for i in range(saves):
        word = "benchsave" + "".join(chr(ord("a") + int(d)) for d in f"{i:04d}") + "q"
        path = repo / folder / f"bench_save_{i % 5}{ext}"
        body = f"def {word}():\n    return {i}\n" if ext == ".py" else f"pub fn {word}() -> u32 {{ {i} }}\n"
        started = time.perf_counter()
        path.write_text(body)
        while not any(h["path"].endswith(path.name) for h in client.search(word)):
            if time.perf_counter() - started > 30:
                sys.exit(f"save {i} not searchable after 30 s")
            time.sleep(0.005)
        latencies.append(time.perf_counter() - started)
        time.sleep(0.3)
    return latencies


def process_stats(pid: int, seconds: float) -> tuple[float, float]:
    """CPU % over `seconds` of idling, and RSS in MiB."""
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    before = cpu()
    time.sleep(seconds)
    used = cpu() - before
    rss_kib = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
    return 100 * used / seconds, rss_kib / 1024


def query_latency(binary: Path, repo: Path, queries: list[str], mode: str) -> list[float]:
    times = []
    for query in queries:
        started = time.perf_counter()
        subprocess.run([str(binary), "search", query, "--json", "--mode", mode], cwd=repo,
                       capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def absorb_checkout(repo: Path, files: int) -> float:
    """Rewrites `files` Python files at once, as a branch switch would; seconds until the
    last one is searchable and nothing is pending."""
    client = DaemonSocket(repo)
    targets = sorted(repo.rglob("*.py"))[:files]
    token = "checkoutmarkerzz"
    started = time.perf_counter()
    for path in targets:
        with path.open("a") as f:
            f.write(f"\n# {token}\n")
    last = targets[-1].relative_to(repo).as_posix()
    while True:
        status = client.call({"type": "status"})
        if status.get("pending_changes", 1) == 0 and any(h["path"] == last for h in search_all(client, token, last)):
            return time.perf_counter() - started
        if time.perf_counter() - started > 600:
            sys.exit("checkout not absorbed in 10 minutes")
        time.sleep(0.02)


def search_all(client: DaemonSocket, token: str, path: str) -> list[dict]:
    answer = client.call({"type": "search", "request": {
        "query": token, "k": 5, "lang": None, "kind": None, "path": path, "mode": "keyword", "explain": False}})
    return answer.get("hits", [])


def report(name: str, values: list[float], unit: str = "ms", scale: float = 1000) -> str:
    return f"{name} p50 {percentile(values, 50) * scale:.0f} {unit}, p95 {percentile(values, 95) * scale:.0f} {unit}, max {max(values) * scale:.0f} {unit}"


def django_source() -> Path:
    folder = CACHE / "corpora" / f"django-{DJANGO_VERSION}"
    if not (folder / "django").is_dir():
        sys.exit(f"{folder} is missing: run `python3 bench/index_bench.py --corpus django` once to fetch it")
    return folder / "django"


def bench_corpus(binary: Path, name: str, saves: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / name
        if name == "fixtures":
            repo.mkdir()
            for fixture in ("rust-shop", "py-notes"):
                shutil.copytree(ROOT / "fixtures" / fixture, repo / fixture,
                                ignore=shutil.ignore_patterns("target", "__pycache__", ".pytest_cache"))
            subprocess.run([str(binary), "index"], cwd=repo, check=True, capture_output=True)
            folder, ext, mode = "rust-shop/src", ".rs", "hybrid"
        else:
            shutil.copytree(django_source(), repo / "django")
            subprocess.run([str(binary), "index", "--keyword-only"], cwd=repo, check=True, capture_output=True)
            folder, ext, mode = "django/utils", ".py", "keyword"
        queries = ["how are sessions stored", "retry failed upload", "parse a date string", "Router::add",
                   "cache entry expired", "escape html", "render template", "load config"]
        cold = query_latency(binary, repo, queries * 3, mode)

        daemon = start_daemon(binary, repo)
        try:
            latencies = save_to_searchable(repo, folder, ext, saves)
            time.sleep(2)
            cpu, rss = process_stats(daemon.pid, 10)
            warm = query_latency(binary, repo, queries * 3, mode)
            print(f"{name} ({'hybrid, embeddings on' if mode == 'hybrid' else 'keyword-only'}):")
            print(f"  save -> searchable   {report('', latencies).strip()}  ({saves} saves)")
            print(f"  idle daemon          {cpu:.2f}% CPU over 10 s, RSS {rss:.0f} MiB")
            print(f"  `quarry search`      {report('without daemon', cold)}")
            print(f"                       {report('through daemon', warm)}")
            if name == "django":
                seconds = absorb_checkout(repo, 2000)
                print(f"  2,000-file checkout  searchable and nothing pending after {seconds:.2f} s")
        finally:
            stop_daemon(binary, repo, daemon)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", choices=["fixtures", "django", "all"], default="all")
    parser.add_argument("--saves", type=int, default=50)
    args = parser.parse_args()
    binary = quarry_bin()
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for name in (["fixtures", "django"] if args.corpus == "all" else [args.corpus]):
        bench_corpus(binary, name, args.saves)


if __name__ == "__main__":
    main()
