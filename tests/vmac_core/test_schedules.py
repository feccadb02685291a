import math

import pytest

from vmac_core.schedules import ema_momentum_at, lr_at, scaled_lr


def test_scaled_lr():
    assert scaled_lr(1e-3, 512) == pytest.approx(2e-3)


def test_lr_warmup_then_cosine():
    base, low = 1.0, 0.1
    assert lr_at(0, 100, 10, base, low) == 0.0
    assert lr_at(5, 100, 10, base, low) == pytest.approx(0.5)
    assert lr_at(10, 100, 10, base, low) == pytest.approx(base)
    assert lr_at(55, 100, 10, base, low) == pytest.approx(low + (base - low) * 0.5)
    assert lr_at(100, 100, 10, base, low) == pytest.approx(low)
    assert lr_at(1000, 100, 10, base, low) == pytest.approx(low)
    values = [lr_at(s, 100, 10, base, low) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_ema_momentum_cosine_from_base_to_one_over_global_step():
    assert ema_momentum_at(0, 1000, 0.996) == pytest.approx(0.996)
    assert ema_momentum_at(1000, 1000, 0.996) == pytest.approx(1.0)
    assert ema_momentum_at(500, 1000, 0.996) == pytest.approx(0.998)
    s = 250
    assert ema_momentum_at(s, 1000, 0.99) == pytest.approx(1 - 0.01 * (math.cos(math.pi * s / 1000) + 1) / 2)
    values = [ema_momentum_at(s, 1000) for s in range(0, 1001, 10)]
    assert all(a <= b for a, b in zip(values, values[1:]))
