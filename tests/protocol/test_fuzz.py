"""A short, bounded run of the fuzz target in ``fuzz_frames.py`` (for CI).

For long runs use the script itself; see its docstring.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .fuzz_frames import mutations, one_input, seed_inputs


@pytest.mark.parametrize("seed", seed_inputs())
def test_seed_corpus(seed: bytes) -> None:
    one_input(seed)


def test_seed_corpus_with_every_flag_combination() -> None:
    for seed in seed_inputs()[::4]:
        for flags in range(32):
            one_input(bytes((flags, 3)) + seed[2:])


def test_random_mutations_of_the_seeds() -> None:
    rng = random.Random(6455)
    seeds = seed_inputs()
    for _ in range(3000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randrange(1, 6)):
            pos = rng.randrange(len(data))
            data[pos] = rng.randrange(256)
        one_input(bytes(data))


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.binary(min_size=2, max_size=2048) | st.sampled_from(seed_inputs()).flatmap(mutations))
def test_fuzz_target_bounded(data: bytes) -> None:
    one_input(data)
