"""How sure a measured drop is: paired counts, exact 95 % intervals, and gates decided on whole numbers.

Float and artifact see the same images, so the comparison is paired: only the discordant images count
(`float_only`: float right and artifact wrong; `artifact_only`: the reverse). The top-1 drop is
(float_only − artifact_only) / n exactly. Its interval is McNemar's exact one: given d discordant images,
float_only ~ Binomial(d, p), Clopper–Pearson bounds on p, drop = d/n · (2p − 1). Agreement k/n gets the
Clopper–Pearson interval of a proportion. Gates compare integers (limit as the decimal the user typed), so
0.81 − 0.80 is exactly 1.0 point, never 1.0000000000000009.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

CONFIDENCE = 0.95
UNDECIDED = "undecided (sample too small)"


@dataclass(frozen=True)
class PairedCounts:
    n: int
    agree: int  # same top-1 class from float and artifact
    float_only: int | None = None  # with labels: float right, artifact wrong
    artifact_only: int | None = None  # with labels: artifact right, float wrong

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def paired_counts(reference: np.ndarray, probs: np.ndarray, labels: np.ndarray | None) -> PairedCounts:
    """Counts over the same images: top-1 of the float model (`reference`) and of the artifact (`probs`)."""
    a, b = np.argmax(reference, 1), np.argmax(probs, 1)
    if labels is None:
        return PairedCounts(len(a), int(np.sum(a == b)))
    right_a, right_b = a == labels, b == labels
    return PairedCounts(len(a), int(np.sum(a == b)), int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b)))


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (n up to millions)."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    i = np.arange(k + 1)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    log_pmf = log_fact[n] - log_fact[i] - log_fact[n - i] + i * np.log(p) + (n - i) * np.log1p(-p)
    top = log_pmf.max()
    return float(min(1.0, np.exp(top) * np.sum(np.exp(log_pmf - top))))


def _bisect(f, target: float, increasing: bool) -> float:
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if (f(mid) < target) == increasing:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def proportion_interval(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Clopper–Pearson) interval of a proportion k/n."""
    if n == 0:
        return 0.0, 1.0
    alpha = (1 - confidence) / 2
    # lower: P(X >= k | p) = alpha, i.e. 1 - cdf(k-1) = alpha; upper: cdf(k | p) = alpha.
    lower = 0.0 if k == 0 else _bisect(lambda p: 1 - _binomial_cdf(k - 1, n, p), alpha, increasing=True)
    upper = 1.0 if k == n else _bisect(lambda p: _binomial_cdf(k, n, p), alpha, increasing=False)
    return lower, upper


def drop_interval_points(counts: PairedCounts, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """McNemar's exact interval of the paired top-1 drop, in points (no discordant image: [0, 0])."""
    d = counts.float_only + counts.artifact_only
    if d == 0:
        return 0.0, 0.0
    lo, hi = proportion_interval(counts.float_only, d, confidence)
    scale = 100.0 * d / counts.n
    return scale * (2 * lo - 1), scale * (2 * hi - 1)


def exact(limit: float) -> Fraction:
    """The limit as the decimal it was written as (1.0 -> 1, 0.3 -> 3/10), not its binary neighbour."""
    return Fraction(repr(float(limit)))


def check_drop(counts: PairedCounts, limit_points: float) -> dict:
    """Gate `top1_drop_points <= limit` on exact counts, with the interval and a three-way verdict."""
    drop = Fraction(100 * (counts.float_only - counts.artifact_only), counts.n)
    lo, hi = drop_interval_points(counts)
    passed = drop <= exact(limit_points)
    verdict = "pass" if hi <= limit_points else "fail" if lo > limit_points else UNDECIDED
    return {"rule": f"top1_drop_points <= {limit_points}", "value": float(drop), "passed": bool(passed),
            "interval": [round(lo, 4), round(hi, 4)], "verdict": verdict}


def check_agreement(counts: PairedCounts, limit: float) -> dict:
    """Gate `top1_agreement >= limit` on exact counts, with the interval and a three-way verdict."""
    lo, hi = proportion_interval(counts.agree, counts.n)
    passed = Fraction(counts.agree, counts.n) >= exact(limit)
    verdict = "pass" if lo >= limit else "fail" if hi < limit else UNDECIDED
    return {"rule": f"top1_agreement >= {limit}", "value": counts.agree / counts.n, "passed": bool(passed),
            "interval": [round(lo, 6), round(hi, 6)], "verdict": verdict}


def combined(checks: list[dict]) -> dict:
    """One gate from several checks: the first check's rule and value (the schema's), every check listed."""
    verdicts = [c["verdict"] for c in checks]
    verdict = "fail" if "fail" in verdicts else "pass" if set(verdicts) == {"pass"} else UNDECIDED
    first = checks[0]
    return {"rule": first["rule"], "value": first["value"], "passed": all(c["passed"] for c in checks),
            "interval": first["interval"], "verdict": verdict, "checks": checks}
