"""Atomic output: the target is replaced only by a complete file, and a failed write leaves it as it was."""

import json

import pytest

from mlms_keras.utils.fileio import atomic_output, atomic_write_json, atomic_write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "corpus.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["corpus.json"]


def test_writes_replace_the_target_and_keep_its_suffix_for_the_writer(tmp_path):
    target = tmp_path / "deep" / "model.keras"
    with atomic_output(target) as temporary:
        assert temporary.suffix == ".keras" and temporary.parent == target.parent
        temporary.write_bytes(b"abc")
    assert target.read_bytes() == b"abc"
    atomic_write_text(tmp_path / "a.txt", "é\n")
    assert (tmp_path / "a.txt").read_bytes() == "é\n".encode()
    atomic_write_json(tmp_path / "b.json", {"language": "pt-br", "name": "São Paulo"})
    assert json.loads((tmp_path / "b.json").read_text(encoding="utf-8")) == {"language": "pt-br", "name": "São Paulo"}


def test_written_files_get_an_ordinary_mode_not_owner_only(tmp_path):
    import os

    mask = os.umask(0)
    os.umask(mask)
    atomic_write_text(tmp_path / "shared.txt", "voice")
    assert (tmp_path / "shared.txt").stat().st_mode & 0o777 == 0o666 & ~mask
