"""The binary encodings the tab is sent (tensorboard_al_plugin/wire.py), against their definitions."""

import numpy as np
import pytest

from tensorboard_al_plugin.wire import U16_MAX, U16_NOT_FINITE, encode_positions, feature_neighbours


def _bounds(headers):
    values = [float(v) for v in dict(headers)["X-Bounds"].split(",")]
    return np.array(values[0::2]), np.array(values[1::2])


def test_u16_positions_decode_within_half_a_step_and_hit_both_ends():
    rng = np.random.default_rng(0)
    for dims in (2, 3):
        y = (rng.normal(size=(5000, dims)) * [30, 0.01, 1e4][:dims]).astype(np.float32)
        body, headers = encode_positions(y, "u16")
        assert dict(headers)["X-Format"] == "u16" and len(body) == y.size * 2
        q = np.frombuffer(body, "<u2").reshape(y.shape)
        lo, hi = _bounds(headers)
        step = (hi - lo) / U16_MAX
        assert np.all(np.abs(lo + q * step - y) <= step / 2 * 1.0001)
        assert (q.min(axis=0) == 0).all() and (q.max(axis=0) == U16_MAX).all()


def test_u16_marks_non_finite_values_and_sends_a_constant_column_as_zero():
    y = np.array([[0, 5], [np.nan, 5], [10, 5], [4, np.inf]], dtype=np.float32)
    body, headers = encode_positions(y, "u16")
    q = np.frombuffer(body, "<u2").reshape(4, 2)
    assert dict(headers)["X-Bounds"] == "0,10,5,5"
    assert q.tolist() == [[0, 0], [U16_NOT_FINITE, 0], [U16_MAX, 0], [26214, U16_NOT_FINITE]]
    body, headers = encode_positions(np.full((3, 2), np.nan, np.float32), "u16")
    assert dict(headers)["X-Bounds"] == "0,0,0,0" and set(np.frombuffer(body, "<u2")) == {U16_NOT_FINITE}
    body, headers = encode_positions(np.zeros((0, 2), np.float32), "u16")
    assert body == b"" and dict(headers)["X-Bounds"] == "0,0,0,0"


def test_f32_is_the_plain_little_endian_answer_and_other_formats_are_refused():
    y = np.arange(6, dtype=np.float64).reshape(3, 2)
    body, headers = encode_positions(y)
    assert body == y.astype("<f4").tobytes() and headers == [("X-Format", "f32")]
    with pytest.raises(ValueError, match="format"):
        encode_positions(y, "f16")


def test_feature_neighbours_equal_a_stable_sort_of_every_distance():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 3, size=(3000, 4)).astype(np.float32)  # many ties
    x[11] = np.nan
    for focus in (0, 11, 2999):
        d = ((x.astype(np.float64) - x[focus]) ** 2).sum(axis=1)
        d[~np.isfinite(d)] = np.inf
        d[focus] = np.nan
        want = np.argsort(d, kind="stable")[:2999]
        for k in (1, 7, 100, 2999, 10 ** 6):
            got = feature_neighbours(x, focus, k)
            assert got.dtype == np.uint32 and np.array_equal(got, want[:min(k, 2999)]), (focus, k)
    assert feature_neighbours(x, 3, 0).shape == (0,)
    with pytest.raises(IndexError):
        feature_neighbours(x, 3000, 5)
