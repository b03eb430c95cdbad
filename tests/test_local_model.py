"""Model files from chunk packages: assembled in order, served only with the pinned hash, cached once."""
from __future__ import annotations

import hashlib
import sys
import textwrap

import pytest

from shared.ops import local_model
from shared.ops.local_model import ModelFile, ModelFileError

PART_BYTES = [b"GGUF-head|", b"middle-" * 1000, b"|tail"]


def _parts(tmp_path):
    paths = []
    for i, data in enumerate(PART_BYTES, 1):
        path = tmp_path / "parts" / f"part{i:02d}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


def _model(sha256: str = hashlib.sha256(b"".join(PART_BYTES)).hexdigest()) -> ModelFile:
    return ModelFile(alias="fake-model", filename="fake.gguf", sha256=sha256,
                     part_modules=("fake_part1", "fake_part2", "fake_part3"), packages="fake-part1 … part3 ==1.0")


def test_parts_are_concatenated_in_order(tmp_path):
    parts = _parts(tmp_path)
    path = local_model.model_path(_model(), tmp_path / "cache", lambda model: parts)
    assert path == tmp_path / "cache" / "fake.gguf"
    assert path.read_bytes() == b"".join(PART_BYTES)


def test_parts_out_of_order_are_refused(tmp_path):
    parts = _parts(tmp_path)
    with pytest.raises(ModelFileError, match="refusing to serve it"):
        local_model.model_path(_model(), tmp_path / "cache", lambda model: parts[::-1])
    assert list((tmp_path / "cache").iterdir()) == []  # neither the file nor its temporary copy stays


def test_a_wrong_hash_is_refused_and_nothing_is_cached(tmp_path):
    parts = _parts(tmp_path)
    with pytest.raises(ModelFileError, match="not the pinned " + "0" * 64):
        local_model.model_path(_model("0" * 64), tmp_path / "cache", lambda model: parts)
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_cached_file_is_reused_without_the_parts(tmp_path):
    parts = _parts(tmp_path)
    first = local_model.model_path(_model(), tmp_path / "cache", lambda model: parts)

    def no_parts(model):
        raise AssertionError("a verified cached file must not be assembled again")

    assert local_model.model_path(_model(), tmp_path / "cache", no_parts) == first


def test_a_damaged_cached_file_is_assembled_again(tmp_path):
    parts = _parts(tmp_path)
    path = local_model.model_path(_model(), tmp_path / "cache", lambda model: parts)
    path.write_bytes(b"truncated")
    assert local_model.model_path(_model(), tmp_path / "cache", lambda model: parts).read_bytes() \
        == b"".join(PART_BYTES)


def test_installed_parts_come_from_each_modules_get_part_path(tmp_path, monkeypatch):
    parts = _parts(tmp_path)
    for module, part in zip(_model().part_modules, parts):
        (tmp_path / "site" / module).mkdir(parents=True)
        (tmp_path / "site" / module / "__init__.py").write_text(textwrap.dedent(f"""
            def get_part_path():
                return {str(part)!r}
        """))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for module in _model().part_modules:  # so that undoing removes them: they point into this test's tmp_path
        monkeypatch.setitem(sys.modules, module, None)
        monkeypatch.delitem(sys.modules, module)
    assert local_model.installed_parts(_model()) == parts
    assert local_model.model_path(_model(), tmp_path / "cache").read_bytes() == b"".join(PART_BYTES)


def test_a_missing_part_package_says_what_to_install():
    model = ModelFile(alias="absent", filename="absent.gguf", sha256="0" * 64,
                      part_modules=("turnforge_absent_part1",), packages="absent-part1 ==1.0")
    with pytest.raises(ModelFileError, match=r"turnforge_absent_part1 is not installed.*absent-part1 ==1.0"):
        local_model.installed_parts(model)


def test_unknown_model_names_the_local_ones():
    with pytest.raises(ModelFileError, match="qwen2.5-coder-1.5b-instruct"):
        local_model.lookup("gpt-4.1")
