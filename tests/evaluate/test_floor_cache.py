"""The floor cache: a second evaluation of a new checkpoint on the same data runs one encoder, not
three; anything that changes a floor's score (data, protocol, architecture, seed) scores it again
(real ingest, real Zarr, real encoders; no Prefect)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import tasks.evaluate.evaluation as evaluation
from storage_schemas.benchmark import EvaluateConfig
from tasks.evaluate.comparison import write_comparison
from tasks.evaluate.floors import data_fingerprint, floor_key
from tasks.evaluate.plan import make_plan
from tasks.evaluate.report import read_report
from tasks.evaluate.weights import EncoderSpec
from tests.evaluate.conftest import ingest_folder, write_davis
from tests.evaluate.test_evaluate import _save_encoder_exports

FLOORS = ("random-init-convnextv2_atto", "pixels")


def _key(spec=EncoderSpec("random-init-convnextv2_atto", "convnextv2_atto", "random-init", seed=0), data="d" * 64,
         **values) -> str:
    return floor_key(spec, data, EvaluateConfig.model_validate({"random_init": True, "data": "s", "out": "o", **values}))


# Every knob that changes a score, each with a second value; and settings that change none.
SCORING = {"propagation": [{"radius": 6.0}, {"context": 3}, {"topk": 5}, {"temperature": 0.1},
                           {"restrict_first_frame": True}, {"pad_context": False}],
           "features": [{"stride": 4}, {"stage_stride": 16}, {"short_side": 240}],
           "vip_classes": [7], "pck_thresholds": [(0.05,)], "heatmap_sigma": [1.0], "keypoint_topk": [5]}
NOT_SCORING = {"threads": 1, "device": "cpu", "out": "elsewhere", "floor_cache": "cache", "overlay_frames": 2,
               "dask_workers": 3}


def test_the_key_changes_with_data_protocol_architecture_and_seed_and_nothing_else():
    base = _key()
    variants = [_key(**{field: value}) for field, values in SCORING.items() for value in values]
    variants += [_key(data="e" * 64),
                 _key(spec=EncoderSpec("random-init-resnet18", "resnet18", "random-init", seed=0)),
                 _key(spec=EncoderSpec("random-init-convnextv2_atto", "convnextv2_atto", "random-init", seed=1)),
                 _key(spec=EncoderSpec("pixels", "pixels", "pixels"))]
    assert base not in variants and len(set(variants)) == len(variants)
    for field, value in NOT_SCORING.items():
        assert _key(**{field: value}) == base, field
    # The encoder's own name in the report (unique-suffixed) is not part of what it computes.
    assert _key(spec=EncoderSpec("random-init-convnextv2_atto-2", "convnextv2_atto", "random-init", seed=0)) == base


def _evaluate(config: EvaluateConfig, run_id: str, loaded: list[str]) -> dict[str, Path]:
    plan = make_plan(config, config.data)
    paths = {spec.name: Path(evaluation.evaluate_encoder(spec, plan, config, run_id)) for spec in plan.encoders}
    write_comparison([str(p) for p in paths.values()], config.out)
    return paths


@pytest.fixture
def counted_loads(monkeypatch) -> list[str]:
    """The names of the encoders actually loaded (run), in order: the real loader, counted."""
    loaded: list[str] = []
    real = evaluation.load_encoder

    def load_and_count(spec, device):
        loaded.append(spec.name)
        return real(spec, device)

    monkeypatch.setattr(evaluation, "load_encoder", load_and_count)
    return loaded


def test_a_new_checkpoint_on_the_same_data_runs_one_encoder(tmp_path, davis_store, counted_loads):
    store, _ = davis_store
    _, first, _ = _save_encoder_exports(tmp_path / "a")
    _, second, _ = _save_encoder_exports(tmp_path / "b")
    common = {"data": store, "threads": 1, "floor_cache": str(tmp_path / "cache")}
    night = itertools.count(1)

    def run(checkpoint: Path, **values) -> dict[str, Path]:
        out = tmp_path / f"night{next(night)}"
        config = EvaluateConfig.model_validate({**common, "checkpoints": [str(checkpoint)], "out": str(out), **values})
        return _evaluate(config, out.name, counted_loads)

    one = run(first)
    assert counted_loads == ["run", *FLOORS]
    assert len(list((tmp_path / "cache" / "floor-cache").glob("*.json"))) == 2
    for name in FLOORS:
        info = read_report(str(one[name])).floor_cache
        assert info is not None and not info.reused

    counted_loads.clear()
    two = run(second)
    assert counted_loads == ["run"]  # one encoder, not three
    for name in FLOORS:
        old, new = read_report(str(one[name])), read_report(str(two[name]))
        assert new.floor_cache.reused and new.floor_cache.reused_by_run_id == "night2"
        assert new.run_id == "night1" and new.sequences == old.sequences and new.summary == old.summary
        assert new.config.out == str(tmp_path / "night2")
    assert read_report(str(two["run"])).run_id == "night2"
    comparison = (tmp_path / "night2" / "comparison.md").read_text()
    assert "Reused from the floor cache" in comparison and "reused from run night1" in comparison

    # A changed protocol scores both floors again; so does a run that saves masks or asks to rescore.
    for values in ({"propagation": {"radius": 6.0}}, {"save_masks": True}, {"reuse_floors": False}):
        counted_loads.clear()
        run(second, **values)
        assert counted_loads == ["run", *FLOORS], values


def test_changed_data_scores_the_floors_again(tmp_path, counted_loads):
    write_davis(tmp_path / "davis", {"blobs": 2})
    store = ingest_folder(tmp_path / "davis", tmp_path / "davis.zarr")
    config = EvaluateConfig(random_init=True, data=store, out=str(tmp_path / "o"), threads=1)
    before = data_fingerprint(make_plan(config, store))
    _evaluate(config, "first", counted_loads)
    write_davis(tmp_path / "more", {"single": 1})
    ingest_folder(tmp_path / "more", tmp_path / "davis.zarr")  # a video added to the store
    assert data_fingerprint(make_plan(config, store)) != before
    counted_loads.clear()
    _evaluate(config, "second", counted_loads)
    assert counted_loads == list(FLOORS)
    counted_loads.clear()
    _evaluate(config, "third", counted_loads)  # nothing changed since: both reused from OUT's own cache
    assert counted_loads == []
