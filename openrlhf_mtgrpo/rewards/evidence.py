"""The one evidence rule of IRC (offline, ``irc/analyze.py``) and EDG (online, ``rewards/gating.py``).

A component's association with success is judged from the rollouts that it fired in or not (the paper's
presence test, the "any" aggregate: for a 0/1 aggregate the 2x2 table fired / not x success / failure):

* the p-value of "no association": Fisher's exact test of the table (exact given its margins; the t-test of
  the point-biserial r for a non-0/1 aggregate), times m, the number of components judged together
  (Bonferroni), must be below ``significance`` = 1 - confidence (family-wise);
* a percentile bootstrap interval of the correlation at 1 - significance / m, from enough resamples that at
  least :data:`MIN_TAIL_DRAWS` fall beyond each end;
* :func:`decide`: *positive* / *anti* when the adjusted p-value passes, the interval lies beyond 0 and
  |rho| > delta; *null* (no effect, by the equivalence margin delta) when the interval lies inside
  (-delta, delta); else *inconclusive*.  A component that fired in, or was absent from, fewer than
  ``min_rollouts`` rollouts is not judged (:func:`testable`).

IRC turns the evidence into a weight; EDG into a gate (:func:`gate_verdict`): evidence for a weight keeps its
term, evidence against it or of no effect drops it, no evidence leaves it as it is, exactly the components
whose weight IRC keeps or changes.

numpy and scipy only: the rollout (EDG's actor) imports this without IRC's heavier modules.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np

#: |rho| of a discriminative component must exceed this; an interval inside +-delta is evidence of no effect
#: (IRC's ``--delta`` default; the paper does not report one)
DEFAULT_DELTA = 0.05
#: a component is judged only if it fired in at least this many rollouts and was absent from as many
#: (IRC's ``--min-rollouts`` default)
DEFAULT_MIN_ROLLOUTS = 10
#: the bootstrap draws at least this many resamples beyond each end of an interval (docs/irc.md)
MIN_TAIL_DRAWS = 25
#: and at least this many in all (IRC's ``--bootstrap`` default)
DEFAULT_BOOTSTRAP = 2000

EVIDENCE = ("positive", "anti", "null", "inconclusive")


def is_binary(x: np.ndarray) -> bool:
    return bool(np.isin(x, (0.0, 1.0)).all())


def testable(fired: int, n: int, min_rollouts: int = DEFAULT_MIN_ROLLOUTS) -> bool:
    """Whether a component that fired in ``fired`` of ``n`` rollouts is judged: it fired in at least
    ``min_rollouts`` and was absent from as many."""
    return min(int(fired), int(n) - int(fired)) >= min_rollouts


def table(x: np.ndarray, o: np.ndarray) -> Tuple[int, int, int, int]:
    """The 2x2 table of 0/1 ``x`` against the 0/1 outcome ``o``: (fired & success, fired & failure,
    absent & success, absent & failure)."""
    x1, o1 = x == 1, o == 1
    return (int(np.sum(x1 & o1)), int(np.sum(x1 & ~o1)), int(np.sum(~x1 & o1)), int(np.sum(~x1 & ~o1)))


def fisher_p(t: Sequence[int]) -> float:
    """Two-sided p-value of Fisher's exact test of the table ``(a, b, c, d)`` = [[a, b], [c, d]]."""
    from scipy import stats

    a, b, c, d = (int(v) for v in t)
    return float(stats.fisher_exact([[a, b], [c, d]])[1])


def phi(t: Sequence[int]) -> Optional[float]:
    """The correlation of a 0/1 component with the 0/1 outcome from its table (= the point-biserial r, the
    Pearson r of the two), or None when either margin is constant."""
    a, b, c, d = (float(v) for v in t)
    den = (a + b) * (c + d) * (a + c) * (b + d)
    return None if den <= 0 else (a * d - b * c) / math.sqrt(den)


def association_p_value(x: np.ndarray, o: np.ndarray) -> Tuple[Optional[float], str]:
    """(two-sided p-value of "x is not associated with the 0/1 outcome o", the test's name).

    0/1 ``x`` (the "any" aggregate): Fisher's exact test of the 2x2 table, exact given its margins (the
    t-test of the point-biserial r is too liberal with few rollouts in a cell).  Otherwise the t-test of
    ``scipy.stats.pointbiserialr``.  (None, name) when either side is constant."""
    if x.std() == 0 or o.std() == 0:
        return None, "fisher_exact" if is_binary(x) else "pointbiserial_t"
    if is_binary(x):
        return fisher_p(table(x, o)), "fisher_exact"
    from scipy import stats

    return float(stats.pointbiserialr(o.astype(bool), x)[1]), "pointbiserial_t"


def bootstrap_draws(requested: int, level: float) -> int:
    """Resamples for a percentile interval at ``level``: ``requested``, or more so that at least
    :data:`MIN_TAIL_DRAWS` draws lie beyond each end (2000 draws at 99.9% would leave 1 per tail)."""
    return max(int(requested), int(math.ceil(2 * MIN_TAIL_DRAWS / (1 - level) - 1e-6)))


def _percentile_ci(r: np.ndarray, conf: float):
    r = r[~np.isnan(r)]
    if not len(r):
        return None
    lo, hi = np.percentile(r, [50 * (1 - conf), 100 - 50 * (1 - conf)])
    return float(lo), float(hi)


def cells_bootstrap_ci(xv: np.ndarray, ov: np.ndarray, counts: np.ndarray, b: int, conf: float,
                       rng: np.random.Generator):
    """Percentile bootstrap interval of the correlation of x with the 0/1 outcome, given how many of the
    n rollouts hold each distinct (x, o) pair (``xv[i], ov[i]``: ``counts[i]``).

    Resampling the rollouts is a multinomial draw of those cell counts (exact): O(b * cells), not
    O(b * n).  Vectorised, in chunks."""
    n = int(counts.sum())
    prob = counts / n
    chunk = max(1, min(b, 4_000_000 // len(xv)))
    rs, done = [], 0
    while done < b:
        m = min(chunk, b - done)
        w = rng.multinomial(n, prob, size=m).astype(float) / n  # (m, cells) resampled shares
        mx, mo = w @ xv, w @ ov
        cov = w @ (xv * ov) - mx * mo
        var_x, var_o = w @ (xv * xv) - mx * mx, mo - mo * mo  # o is 0/1
        den = np.sqrt(np.clip(var_x, 0, None) * np.clip(var_o, 0, None))
        with np.errstate(invalid="ignore", divide="ignore"):
            rs.append(np.where(den > 1e-12, cov / den, np.nan))
        done += m
    return _percentile_ci(np.concatenate(rs), conf)


def bootstrap_ci(x: np.ndarray, o: np.ndarray, b: int, conf: float, rng: np.random.Generator):
    """Percentile bootstrap interval of the correlation of x with the 0/1 outcome o (b resamples of the
    rollouts; for the 0/1 "any" aggregate a draw of the 2x2 table), or None when either side is constant."""
    if x.std() == 0 or o.std() == 0:
        return None
    pairs, counts = np.unique(np.stack([x, o], 1), axis=0, return_counts=True)
    return cells_bootstrap_ci(pairs[:, 0], pairs[:, 1], counts, b, conf, rng)


def table_bootstrap_ci(t: Sequence[int], b: int, conf: float, rng: np.random.Generator):
    """:func:`bootstrap_ci` of a 0/1 component from its table ``(a, b, c, d)`` (cells in the order
    :func:`bootstrap_ci` takes them, so the same generator state gives the same interval)."""
    a, b_, c, d = (int(v) for v in t)
    cells = [(0.0, 0.0, d), (0.0, 1.0, c), (1.0, 0.0, b_), (1.0, 1.0, a)]  # np.unique's (x, o) order
    cells = [cell for cell in cells if cell[2] > 0]
    xv, ov, counts = (np.array(v, dtype=float) for v in zip(*cells))
    if np.ptp(xv) == 0 or np.ptp(ov) == 0:
        return None
    return cells_bootstrap_ci(xv, ov, counts, b, conf, rng)


def decide(rho: float, ci: Tuple[float, float], p_adjusted: Optional[float], delta: float,
           significance: float) -> str:
    """The evidence on one component: *positive* / *anti*: the adjusted p-value below ``significance``, the
    interval beyond 0 and |rho| > delta; *null*: the interval inside (-delta, delta); else *inconclusive*."""
    lo, hi = ci
    significant = p_adjusted is not None and p_adjusted < significance
    if significant and lo > 0 and rho > delta:
        return "positive"
    if significant and hi < 0 and rho < -delta:
        return "anti"
    if -delta < lo and hi < delta:
        return "null"
    return "inconclusive"


def gate_verdict(evidence: str, weight: float) -> Optional[bool]:
    """What the evidence says of a component's term with this (non-zero) weight: True, evidence for the
    weight (IRC keeps it; EDG keeps or reopens the gate); False, evidence against it or of no effect (IRC
    flips or zeroes it; EDG closes the gate); None, no evidence (both leave it as it is)."""
    if weight == 0 or evidence not in ("positive", "anti", "null"):
        return None
    if evidence == "null":
        return False
    return (evidence == "positive") == (weight > 0)


def null_possible(rho: float, n: int, level: float, delta: float) -> bool:
    """Whether a percentile interval at ``level`` around ``rho`` from ``n`` rollouts could lie inside
    (-delta, delta): False when |rho| >= delta or when half the normal interval's half width, z / sqrt(n)
    (the correlation's standard error near 0 is 1 / sqrt(n)), is already wider than what is left of the
    margin.  A screen that spares EDG resamples that cannot change its decision (at window 512 and delta
    0.05 no interval is narrow enough: evidence of no effect needs several thousand rollouts)."""
    from scipy import stats

    if abs(rho) >= delta:
        return False
    z = float(stats.norm.ppf(1 - (1 - level) / 2))
    return 0.5 * z / math.sqrt(max(n, 1)) < delta - abs(rho)
