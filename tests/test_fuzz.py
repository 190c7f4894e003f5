"""Fuzzing ``ser_core.audio.decode`` with random and mutated bytes (bit flips, truncations, spliced chunks of
valid OGG/Opus, MP3, WAV and FLAC files made here): only ``SerError`` subclasses come out, every call returns
within a bound (a hang detector, not a speed test), and no output exceeds the duration limit."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from synth import tone

from ser_core.audio import Limits, decode, encode
from ser_core.errors import SerError

pytestmark = pytest.mark.timeout(120)

SR = 16_000
LIMITS = Limits(max_seconds=2.0, ffmpeg_timeout=10.0)
MAX_CALL_S = 5.0
FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seeds() -> dict[str, bytes]:
    y = tone(200, 1.5, sr=48_000, vibrato=0.02)
    return {
        "ogg": encode(y, 48_000, "OGG", "OPUS"),
        "mp3": encode(y, 48_000, "MP3"),
        "wav": encode(y, 48_000, "WAV", "PCM_16")[:40_000],  # 0.4 s: keeps each example cheap
        "flac": encode(y, 48_000, "FLAC"),
    }


SEEDS = _seeds()


def check(data: bytes) -> None:
    t0 = time.perf_counter()
    try:
        y = decode(data, limits=LIMITS)
    except SerError:
        y = None
    # Anything else propagates: a bug in audio.py.
    elapsed = time.perf_counter() - t0
    assert elapsed < MAX_CALL_S, f"decode took {elapsed:.1f} s on {len(data)} bytes"
    if y is not None:
        assert y.dtype == np.float32 and y.ndim == 1
        assert y.size <= LIMITS.max_seconds * SR
        assert np.isfinite(y).all()


@st.composite
def mutated(draw) -> bytes:
    kind = draw(st.sampled_from(sorted(SEEDS)))
    b = bytearray(SEEDS[kind])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "header"]))
        if not b:
            break
        if op == "flip":
            for _ in range(draw(st.integers(1, 16))):
                i = draw(st.integers(0, len(b) - 1))
                b[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "truncate":
            b = b[: draw(st.integers(0, len(b)))]
        elif op == "splice":  # a chunk of another (or the same) valid file dropped in somewhere
            other = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
            start = draw(st.integers(0, len(other) - 1))
            chunk = other[start : start + draw(st.integers(1, 4096))]
            at = draw(st.integers(0, len(b)))
            b[at:at] = chunk
        elif op == "insert":
            at = draw(st.integers(0, len(b)))
            b[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:  # overwrite inside the first 64 bytes, where sizes, rates and channel counts live
            i = draw(st.integers(0, min(63, len(b) - 1)))
            b[i : i + 4] = draw(st.binary(min_size=4, max_size=4))
    return bytes(b)


@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(data):
    check(data)


@FUZZ
@given(
    data=st.sampled_from(sorted(SEEDS)).flatmap(
        lambda k: st.binary(min_size=4, max_size=2048).map(lambda tail, k=k: SEEDS[k][:64] + tail)
    )
)
def test_valid_header_random_body(data):
    check(data)


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=mutated())
def test_mutated_valid_files(data):
    check(data)


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_every_truncation_point_of_the_headers(kind):
    """Deterministic sweep: each prefix of the first 200 bytes, then a few longer ones."""
    seed = SEEDS[kind]
    for n in [*range(0, 200, 17), *range(200, len(seed), max(1, len(seed) // 10))]:
        check(seed[:n])


def test_seeds_decode():
    for kind, data in SEEDS.items():
        assert decode(data, limits=Limits()).size > 0, kind
