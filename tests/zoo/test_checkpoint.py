"""Checkpoints: round trip, metadata, atomic writes, and refusal of pickles that would run code."""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

from zoo.checkpoint import (checkpoint_paths, load_checkpoint, load_training_state, resolve_checkpoint,
                            save_checkpoint)
from zoo.errors import CheckpointError


class _RunsCode:
    def __reduce__(self):
        return (os.system, ("echo this-should-never-run",))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)).to(memory_format=torch.channels_last)


def test_round_trip_keeps_weights_metadata_and_state(tmp_path):
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    opt.step()
    state = {"step": 7, "optimizer": opt.state_dict(), "rng": torch.get_rng_state()}
    weights = save_checkpoint(tmp_path / "last", model, {"model": "m", "options": {"width": 3}, "step": 7}, state)
    loaded = load_checkpoint(tmp_path)  # a folder resolves to its checkpoint
    assert loaded.path == weights and loaded.meta["model"] == "m" and loaded.meta["options"] == {"width": 3}
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in model.state_dict().items())
    back = load_training_state(tmp_path / "last")
    assert back["step"] == 7 and torch.equal(back["rng"], state["rng"])
    opt2 = torch.optim.Adam(_model().parameters())
    opt2.load_state_dict(back["optimizer"])  # weights-only load gives a usable optimizer state
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_a_pickle_that_runs_code_is_refused_naming_the_global(tmp_path, capfd):
    _, state_path = checkpoint_paths(tmp_path / "last")
    torch.save({"step": 1, "payload": _RunsCode()}, state_path)
    with pytest.raises(CheckpointError, match=r"'(posix|nt)\.system'.*--unsafe-load"):
        load_training_state(state_path)
    assert "this-should-never-run" not in capfd.readouterr().out


def test_unknown_class_is_refused_by_name(tmp_path):
    torch.save({"thing": torch.nn.Linear(1, 1)}, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=r"torch\.nn\.modules\.linear\.Linear"):
        load_training_state(tmp_path / "x.pt")
    assert isinstance(load_training_state(tmp_path / "x.pt", unsafe=True)["thing"], nn.Linear)


def test_missing_and_foreign_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        resolve_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resolve_checkpoint(tmp_path)
    from safetensors.torch import save_file
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not written by zoo"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00\x01garbage")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "broken.safetensors")


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    model = _model()
    save_checkpoint(tmp_path / "last", model, {"step": 1}, {"step": 1})
    import zoo.checkpoint as ckpt

    def crash(obj, path):
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "last", model, {"step": 2}, {"step": 2})
    monkeypatch.undo()
    assert load_training_state(tmp_path / "last")["step"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "last.safetensors"]
