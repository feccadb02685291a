"""The benchmark JSON's contract (storage_schemas.benchmark) against the code it records:
the propagation knobs are vmac_core's, and files of another schema version are told apart."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from storage_schemas import benchmark as bm
from storage_schemas.benchmark import BenchmarkReport
from tasks.evaluate.video import propagation_config
from vmac_core.propagation import PropagationConfig


def test_the_config_holds_the_propagation_dataclass_and_its_bounds():
    """One definition: EvaluateConfig.propagation is vmac_core's dataclass, its bounds are the
    dataclass's own, and a misspelt knob is refused rather than ignored."""
    assert bm.EvaluateConfig.model_fields["propagation"].annotation in (PropagationConfig, "PropagationConfig")
    base = {"random_init": True, "data": "d", "out": "o"}
    assert bm.EvaluateConfig.model_validate(base).propagation == PropagationConfig()
    for name, bad in (("context", -1), ("radius", 0.0), ("topk", 0), ("temperature", 0.0), ("tile", 0)):
        with pytest.raises(ValueError):
            PropagationConfig(**{name: bad})
        with pytest.raises(ValidationError, match=name):
            bm.EvaluateConfig.model_validate({**base, "propagation": {name: bad}})
    with pytest.raises(ValidationError, match="radus"):
        bm.EvaluateConfig.model_validate({**base, "propagation": {"radus": 3}})
    dumped = bm.EvaluateConfig.model_validate(base).model_dump(mode="json")["propagation"]
    assert dumped == dataclasses.asdict(PropagationConfig())


def test_every_knob_reaches_propagation():
    config = bm.EvaluateConfig.model_validate(
        {"random_init": True, "data": "d", "out": "o",
         "propagation": {"context": 3, "radius": 4.5, "topk": 2, "temperature": 0.2,
                         "restrict_first_frame": True, "pad_context": False, "tile": 5}})
    assert propagation_config(config) == PropagationConfig(3, 4.5, 2, 0.2, True, False, 5)


def test_benchmark_fields_and_the_schema_version():
    assert bm.BENCHMARK_SCHEMA_VERSION == 2 and bm.BENCHMARKS == ("davis", "youtube-vos", "vip", "jhmdb")
    for model in (bm.VideoInput, bm.SequenceResult, bm.BenchmarkSummary):
        assert "benchmark" in model.model_fields and "task" not in model.model_fields
    assert BenchmarkReport.model_fields["schema_version"].default == 2
    with pytest.raises(ValidationError, match="schema version 1"):
        BenchmarkReport.model_validate({"schema_version": 1})
