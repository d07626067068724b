"""``probabilistic``: a share of traces by trace id (the collector's ``probabilistic.go``).

FNV-1a 64 over the salt and the 16 trace-id bytes, kept when at most a threshold computed
exactly as Go does: the same trace id is kept by every collector and every app.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Final

from closedloop.sampling._decision import Decision
from closedloop.sampling._policies.base import ReadsNoAttribute, sampled_if
from closedloop.sampling._trace import BufferedTrace

MAX_UINT64 = (1 << 64) - 1
DEFAULT_HASH_SALT = "default-hash-seed"


def sampling_threshold(percentage: float) -> int:
    """(2^64-1) x ratio as the collector computes it: the ratio is the float64 ``pct / 100``,
    the product a 64-bit-mantissa big.Float (round half to even), truncated to uint64."""
    ratio = Fraction(percentage / 100)
    exact = Fraction(MAX_UINT64) * ratio
    if exact <= 0:
        return 0
    exponent = exact.numerator.bit_length() - exact.denominator.bit_length()
    while Fraction(2) ** exponent <= exact:
        exponent += 1
    while Fraction(2) ** (exponent - 1) > exact:
        exponent -= 1
    scale = Fraction(2) ** (exponent - 64)
    scaled = exact / scale
    mantissa, remainder = divmod(scaled.numerator, scaled.denominator)
    half = Fraction(remainder, scaled.denominator)
    if half > Fraction(1, 2) or (half == Fraction(1, 2) and mantissa % 2 == 1):
        mantissa += 1
    return min(int(mantissa * scale), MAX_UINT64)


FNV_OFFSET_BASIS: Final = 0xCBF29CE484222325


def fnv1a_64(data: bytes, value: int = FNV_OFFSET_BASIS) -> int:
    """FNV-1a of ``data``; ``value``: the hash of what came before it (the salt's, which
    each policy hashes once instead of once per trace)."""
    for byte in data:
        value = ((value ^ byte) * 0x100000001B3) & MAX_UINT64
    return value


class Probabilistic(ReadsNoAttribute):
    def __init__(self, name: str, percentage: float, salt: str) -> None:
        super().__init__(name)
        self.salt = (salt or DEFAULT_HASH_SALT).encode()
        self.threshold = sampling_threshold(percentage)
        self._salted = fnv1a_64(self.salt)

    def evaluate(self, trace: BufferedTrace) -> Decision:
        return sampled_if(fnv1a_64(trace.trace_id_bytes, self._salted) <= self.threshold)


__all__ = ["DEFAULT_HASH_SALT", "Probabilistic", "fnv1a_64", "sampling_threshold"]
