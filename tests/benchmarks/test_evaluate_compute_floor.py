"""benchmarks/evaluate.py's compute floor of propagation: the FLOP count against brute force."""

from __future__ import annotations

import importlib.util
import itertools
from pathlib import Path

import pytest

from vmac_core.propagation import PropagationConfig

ROOT = Path(__file__).resolve().parents[2]


def _benchmark():
    spec = importlib.util.spec_from_file_location("benchmark_evaluate", ROOT / "benchmarks" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("h, w, radius, context, restrict", [(7, 9, 3.0, 2, False), (5, 12, 2.5, 3, True),
                                                             (10, 10, 12.0, 1, False)])
def test_minimal_flops_count_every_pair_within_the_radius_and_all_of_frame_0(h, w, radius, context, restrict):
    bench = _benchmark()
    channels = 5
    cfg = PropagationConfig(context=context, radius=radius, restrict_first_frame=restrict, tile=4)
    sites = list(itertools.product(range(h), range(w)))
    near = sum((a - c) ** 2 + (b - d) ** 2 < radius ** 2 for (a, b), (c, d) in itertools.product(sites, sites))
    first = near if restrict else len(sites) ** 2
    flops = bench.propagation_flops((h, w), channels, cfg)
    assert flops["minimal_gflop"] * 1e9 == pytest.approx(2 * channels * (context * near + first))
    assert flops["implemented_gflop"] >= flops["minimal_gflop"]


def test_matmul_rates_are_measured_per_shape():
    rates = _benchmark().matmul_gflops({"small": (64, 32, 16), "batched": (3, 20, 8, 4)}, seconds=0.05)
    assert set(rates) == {"small", "batched"} and all(rate > 0 for rate in rates.values())
