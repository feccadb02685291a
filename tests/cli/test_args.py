"""The CLI's config builders: models' defaults, presets under options, one --set parser, and
config errors that stop the command before any work, one line per error."""

from __future__ import annotations

import itertools
import time

import pytest
from pydantic import BaseModel, ValidationError

from cli.args import (
    ConfigError,
    error_lines,
    evaluate_config_from_args,
    ingest_config_from_args,
    parse_overrides,
    pipeline_config_from_args,
    pretrain_config_from_args,
    validate_config_from_args,
    validated,
)
from cli.main import build_parser, main
from storage_schemas.benchmark import FLOOR_ENCODER, EvaluateConfig
from storage_schemas.config import (
    DEFAULT_PRESET,
    PRETRAIN_PRESETS,
    IngestConfig,
    PipelineConfig,
    PretrainConfig,
    UnknownFieldError,
    build_pretrain_config,
    field_types,
    nest_overrides,
)
from storage_schemas.records import DecodeParams
from storage_schemas.validation import ValidateConfig


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


# --- defaults come from the models; options win over presets -------------------------------------


def test_ingest_defaults_are_the_models_and_options_win():
    config = ingest_config_from_args(parse("ingest", "a.mp4", "--store", "s.zarr"))
    assert config == IngestConfig(sources=["a.mp4"], store="s.zarr")
    config = ingest_config_from_args(parse("ingest", "a.mp4", "--store", "s.zarr", "--short-side", "0",
                                           "--shard-frames", "8", "--workers", "2", "--no-progress"))
    assert config.decode == DecodeParams(short_side=0, shard_frames=8)
    assert (config.dask_workers, config.progress) == (2, False)


def test_motion_option_and_the_motion_strategy_turn_the_motion_map_on():
    assert ingest_config_from_args(parse("ingest", "a.mp4", "--store", "s.zarr", "--motion")).decode.motion
    assert not pipeline_config_from_args(parse("run")).train_decode().motion
    config = pipeline_config_from_args(parse("run", "--set", "mask_strategy=motion", "--set", "motion_temperature=0.5"))
    assert config.train_decode().motion and not config.decode.motion  # the evaluation store needs none
    planned = config.pretrain_config("s.zarr", "o/runs/tiny-cpu-001")
    assert (planned.model.mask_strategy, planned.model.motion_temperature) == ("motion", 0.5)
    pretrain = pretrain_config_from_args(parse("pretrain", "--store", "s.zarr", "--out", "r", "--set",
                                               "mask_strategy=adaptive"))
    assert pretrain.model.mask_strategy == "adaptive"


def test_run_defaults_are_the_models_and_options_win():
    assert pipeline_config_from_args(parse("run")) == PipelineConfig()
    config = pipeline_config_from_args(parse(
        "run", "--out", "o", "--seed", "3", "--small-sample", "--preset", "paper-r50", "--short-side", "128",
        "--on-new-data", "new-run", "--reevaluate", "--set", "optimiser.base_lr=5e-4", "--set", "mask_ratio=0.9"))
    assert (config.out, config.sample_seed, config.sample_small, config.preset) == ("o", 3, True, "paper-r50")
    assert (config.decode.short_side, config.on_new_data, config.reevaluate) == (128, "new-run", True)
    assert config.pretrain == {"optimiser": {"base_lr": 5e-4}, "model": {"mask_ratio": 0.9}}
    planned = config.pretrain_config("s.zarr", "o/runs/paper-r50-001")
    assert (planned.optimiser.base_lr, planned.model.mask_ratio, planned.model.encoder) == (5e-4, 0.9, "resnet50")


def test_pretrain_defaults_are_the_preset_over_the_models():
    config = pretrain_config_from_args(parse("pretrain", "--store", "s.zarr", "--out", "run"))
    assert config == build_pretrain_config(DEFAULT_PRESET, {"stores": ["s.zarr"], "out": "run"})
    preset = PRETRAIN_PRESETS[DEFAULT_PRESET]
    assert config.model.encoder == preset["model"]["encoder"]
    assert config.optimiser.batch_size == preset["optimiser"]["batch_size"]
    # Fields the preset does not name keep the models' defaults.
    assert config.model.mask_ratio == PretrainConfig.model_fields["model"].default_factory().mask_ratio
    assert config.optimiser.weight_decay == PretrainConfig.model_fields["optimiser"].default.weight_decay
    assert config.run.resume is False and config.data.gap == 1


def test_pretrain_options_win_over_the_preset_and_set_wins_over_options():
    config = pretrain_config_from_args(parse(
        "pretrain", "--store", "a.zarr", "--store", "b.zarr", "--out", "run", "--encoder", "resnet18",
        "--input-size", "64", "--batch-size", "8", "--max-steps", "3", "--loader-workers", "1", "--device", "cpu",
        "--pretrain-seed", "5", "--resume", "--set", "optimiser.batch_size=16", "--set", "clip_grad=3",
        "--set", "betas=[0.8, 0.9]"))
    assert config.stores == ["a.zarr", "b.zarr"]
    assert (config.model.encoder, config.model.input_size) == ("resnet18", 64)
    assert (config.optimiser.batch_size, config.optimiser.max_steps, config.optimiser.clip_grad) == (16, 3, 3.0)
    assert config.optimiser.betas == (0.8, 0.9)
    assert (config.data.loader_workers, config.run.device, config.run.seed, config.run.resume) == (1, "cpu", 5, True)
    # The preset still fills what no option named.
    assert config.model.decoder_dim == PRETRAIN_PRESETS[DEFAULT_PRESET]["model"]["decoder_dim"]


def test_validate_defaults_are_the_models_and_options_win():
    assert validate_config_from_args(parse("validate", "--store", "s.zarr")) == ValidateConfig(store="s.zarr")
    config = validate_config_from_args(parse("validate", "--store", "s.zarr", "--fps-range", "5", "60",
                                             "--max-frozen-run", "4", "--sample-frames", "40"))
    assert (config.thresholds.fps_min, config.thresholds.fps_max, config.thresholds.max_frozen_run) == (5, 60, 4)
    assert config.sample_frames_per_video == 40


def test_evaluate_defaults_are_the_models_and_options_win():
    config = evaluate_config_from_args(parse("evaluate", "--baseline", "random-init", "--data", "d.zarr", "--out", "e"))
    assert config == EvaluateConfig(random_init=True, data="d.zarr", out="e")
    config = evaluate_config_from_args(parse("evaluate", "--checkpoint", "a.pt", "b.pt", "--checkpoint", "c.pt",
                                             "--data", "d", "--out", "e", "--context", "5", "--batch-size", "2"))
    assert config.checkpoints == ["a.pt", "b.pt", "c.pt"]
    assert (config.propagation.context, config.features.batch_size) == (5, 2)


def test_crop_areas_are_fractions_and_the_error_names_the_field():
    config = build_pretrain_config("tiny-cpu", {"stores": ["s"], "out": "o", **parse_overrides(
        ["crop_scale=[0.4, 1.0]", "inner_crop_scale=[0.2, 0.5]"])})
    assert config.data.crop_scale == (0.4, 1.0) and config.data.inner_crop_scale == (0.2, 0.5)
    assert build_pretrain_config("tiny-cpu", {"stores": ["s"], "out": "o"}).data.inner_crop_scale is None
    for field, bad in itertools.product(("crop_scale", "inner_crop_scale"), ([0.5, 0.2], [0.0, 0.5], [0.5, 1.5])):
        with pytest.raises(ValidationError, match=f"{field} is an area fraction"):
            build_pretrain_config("tiny-cpu", {"stores": ["s"], "out": "o", "data": {field: bad}})


def test_every_preset_is_a_valid_config():
    for name in PRETRAIN_PRESETS:
        config = build_pretrain_config(name, {"stores": ["s"], "out": "o"})
        assert config.preset == name


# --- one --set parser ----------------------------------------------------------------------------


def test_set_takes_section_paths_bare_names_and_top_level_fields():
    assert parse_overrides(["optimiser.base_lr=5e-4", "mask-ratio=0.5", "out=r", "stores=[a, b]", "gap_max=3"]) == {
        "optimiser": {"base_lr": 5e-4}, "model": {"mask_ratio": 0.5}, "out": "r", "stores": ["a", "b"],
        "data": {"gap_max": 3}}
    assert parse_overrides(["max_steps=null", "compile=true", "encoder=resnet18"]) == {
        "optimiser": {"max_steps": None}, "run": {"compile": True}, "model": {"encoder": "resnet18"}}


def test_every_field_has_one_bare_name():
    """Bare names resolve to one section: no field name is shared between sections or the top."""
    top = field_types(PretrainConfig)
    names = [name for kind in top.values() for name in (field_types(kind) or {})]
    names += [name for name, kind in top.items() if not field_types(kind)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("item, named", [
    ("mask_ration=0.5", "model.mask_ratio"), ("optimiser.mask_ratio=0.5", "model.mask_ratio"),
    ("run.sed=1", "run.seed"), ("base_lrr=1", "optimiser.base_lr"), ("workers=0", "data.loader_workers"),
])
def test_set_typos_fail_naming_the_closest_field_and_the_sections(item, named):
    with pytest.raises(ConfigError) as err:
        parse_overrides([item])
    [line] = err.value.lines
    assert f"unknown field {item.split('=')[0]!r}" in line and named in line
    assert "sections: model, data, optimiser, run" in line


@pytest.mark.parametrize("item", ["foo", "=3", " =3"])
def test_set_without_field_or_equals_fails(item):
    with pytest.raises(ConfigError, match=r"expected \[SECTION.\]FIELD=VALUE"):
        parse_overrides([item])


def test_a_name_in_several_sections_must_be_qualified():
    class A(BaseModel):
        size: int = 1

    class B(BaseModel):
        size: int = 2

    class Both(BaseModel):
        a: A = A()
        b: B = B()

    assert nest_overrides({"a.size": 3}, Both) == {"a": {"size": 3}}
    with pytest.raises(UnknownFieldError, match="a.size, b.size"):
        nest_overrides({"size": 3}, Both)


# --- config errors -------------------------------------------------------------------------------


def test_decode_refuses_unknown_keys():
    with pytest.raises(ValidationError):
        DecodeParams.model_validate({"short_sid": 128})
    with pytest.raises(ConfigError) as err:
        validated(PipelineConfig, {"decode": {"short_sid": 128}})
    [line] = err.value.lines
    assert line.startswith("decode.short_sid: unknown field (got 128); did you mean short_side?")
    assert "allowed: short_side, fps, shard_frames, on_decode_error, motion, frame_codec, schema_version" in line


def test_patch_size_fails_at_config_validation():
    with pytest.raises(ConfigError) as err:
        pretrain_config_from_args(parse("pretrain", "--store", "s", "--out", "o", "--set", "patch_size=16"))
    [line] = err.value.lines
    assert line.startswith("model: patch_size must equal the encoder stride 32") and "got 16" in line
    with pytest.raises(ValidationError):
        PipelineConfig(pretrain={"model": {"patch_size": 16}})


def test_every_section_refuses_unknown_keys():
    for section in ("model", "data", "optimiser", "run"):
        with pytest.raises(ValidationError) as err:
            build_pretrain_config(None, {"stores": ["s"], "out": "o", section: {"nope": 1}})
        assert err.value.errors()[0]["loc"] == (section, "nope")


def test_pipeline_validates_its_pretrain_overrides_when_built():
    with pytest.raises(ValidationError) as err:
        PipelineConfig(pretrain={"optimiser": {"base_lrr": 1e-3}})
    assert err.value.errors()[0]["loc"] == ("pretrain", "optimiser", "base_lrr")
    with pytest.raises(ValidationError, match="run.resume is set by the pipeline"):
        PipelineConfig(pretrain={"run": {"resume": True}})
    with pytest.raises(ValidationError, match="unknown preset"):
        PipelineConfig(preset="tiny")


def test_the_floor_architecture_is_the_tiny_cpu_presets_encoder():
    assert FLOOR_ENCODER == PRETRAIN_PRESETS["tiny-cpu"]["model"]["encoder"]
    assert EvaluateConfig(random_init=True, data="d", out="o").floor_encoder == FLOOR_ENCODER


def test_pipeline_validates_its_evaluation_settings_when_built():
    """Before any stage runs, as the pre-training overrides: a nightly run's misspelt or out-of-range
    evaluation setting must not wait hours for pre-training to end."""
    for settings, loc in (({"propagation": {"radus": 3}}, ("evaluate", "propagation", "radus")),
                          ({"threads": 0}, ("evaluate", "threads")),
                          ({"propagation": {"topk": 0}}, ("evaluate", "propagation")),
                          ({"splt": "val"}, ("evaluate", "splt"))):
        with pytest.raises(ValidationError) as err:
            PipelineConfig(evaluate=settings)
        assert err.value.errors()[0]["loc"][:len(loc)] == loc, settings
    for owned in ("checkpoints", "data", "out"):
        with pytest.raises(ValidationError, match=f"evaluate.{owned} is set by the pipeline"):
            PipelineConfig(evaluate={owned: "x"})
    assert PipelineConfig(evaluate={"split": "all", "propagation": {"topk": 5}}).evaluate["propagation"]["topk"] == 5


def test_error_lines_name_field_value_and_what_is_allowed():
    with pytest.raises(ValidationError) as err:
        PretrainConfig.model_validate({"stores": [], "out": "o", "run": {"amp": "fp8", "log_every": 0},
                                       "optimiser": {"base_lr": "fast"}})
    lines = error_lines(err.value, PretrainConfig)
    assert len(lines) == 4
    assert any(line.startswith("stores: List should have at least 1 item") for line in lines)
    assert "run.amp: Input should be 'auto', 'bf16', 'fp16' or 'off' (got 'fp8')" in lines
    assert "run.log_every: Input should be greater than or equal to 1 (got 0)" in lines
    assert any(line.startswith("optimiser.base_lr: ") and line.endswith("(got 'fast')") for line in lines)


# --- through vmac's main: exit 2 before any work -------------------------------------------------


def test_run_with_a_typo_exits_2_before_ingest(tmp_path, capsys):
    out = tmp_path / "out"
    started = time.perf_counter()
    assert main(["run", "--out", str(out), "--small-sample", "--set", "mask_ration=0.5"]) == 2
    assert time.perf_counter() - started < 10
    assert not out.exists()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["vmac run: --set: unknown field 'mask_ration'; did you mean model.mask_ratio or model.mask_strategy? "
                   "(fields: preset, stores, out; sections: model, data, optimiser, run)"]


@pytest.mark.parametrize("item", ["foo", "mask_ration=0.5"])
def test_run_and_pretrain_refuse_the_same_set_items_alike(tmp_path, capsys, item):
    assert main(["run", "--out", str(tmp_path / "r"), "--set", item]) == 2
    run_err = capsys.readouterr().err
    assert main(["pretrain", "--store", "s", "--out", str(tmp_path / "p"), "--set", item]) == 2
    pretrain_err = capsys.readouterr().err
    assert run_err.removeprefix("vmac run: ") == pretrain_err.removeprefix("vmac pretrain: ")
    assert not (tmp_path / "r").exists() and not (tmp_path / "p").exists()


def test_config_errors_print_one_line_each_without_a_traceback(tmp_path, capsys):
    argv = ["pretrain", "--store", "s", "--out", str(tmp_path / "p"), "--set", "run.log_every=0",
            "--set", "model.decoder_dim=-1", "--set", "gap=0"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("vmac pretrain: ") for line in err)
    assert "Traceback" not in "\n".join(err)
