"""IRC analysis: how well each per-turn reward component separates success from failure.

For every component: firing rate, the point-biserial correlation of its per-rollout
aggregate with the outcome (``scipy.stats.pointbiserialr``; aggregates "any" -- the
component fired in some turn, the paper's presence test -- and "mean" over turns),
a bootstrap confidence interval, a tier, and a new weight.  Then the advantages the
chosen estimator would produce are recomputed from the logged components: each
component's mean advantage must point the way its weight does; components that do
not are zeroed, and the check repeats until none is misaligned.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy import stats

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.irc.logs import LogBatch
from openrlhf_mtgrpo.rewards.calibration import Calibration
from openrlhf_mtgrpo.rewards.components import COMPONENTS

TIER_POS, TIER_NONE, TIER_ANTI = "discriminative_positive", "non_discriminative", "anti_discriminative"


@dataclass
class IRCOptions:
    delta: float = 0.05  # |rho| above this is discriminative (not reported by the paper)
    alpha: float = 1.0  # scale of the proportional rule (not reported by the paper)
    rule: str = "keep_flip_zero"  # or "proportional": w = alpha * rho when |rho| > delta, else 0
    aggregate: str = "any"  # which per-rollout aggregate decides: "any" (paper) or "mean"
    estimator: str = "gtpo_hybrid"  # whose advantages are checked (what you train with); mt_grpo = the paper's check
    gamma: float = 0.9
    lam: float = 0.3
    bootstrap: int = 500
    confidence: float = 0.95
    seed: int = 0
    pin: Sequence[str] = ("gold_exact",)  # weights never changed
    max_rounds: int = 10

    def __post_init__(self):
        if self.rule not in ("keep_flip_zero", "proportional"):
            raise ValueError(f"rule must be keep_flip_zero or proportional, got {self.rule!r}")
        if self.aggregate not in ("any", "mean"):
            raise ValueError(f"aggregate must be any or mean, got {self.aggregate!r}")
        if self.estimator not in ("mt_grpo", "gtpo_hybrid", "grpo_outcome"):
            raise ValueError(f"unknown estimator {self.estimator!r}")
        bad = set(self.pin) - set(COMPONENTS)
        if bad:
            raise ValueError(f"unknown component(s) to pin {sorted(bad)}; known: {', '.join(COMPONENTS)}")


@dataclass
class ComponentStat:
    name: str
    weight_before: float
    turn_rate: float
    rollout_rate: float
    rho_any: Optional[float]
    rho_mean: Optional[float]
    p_value: Optional[float]
    ci: Optional[tuple]
    tier: str
    weight_after: float
    mean_advantage_before: Optional[float] = None
    mean_advantage_after: Optional[float] = None
    reasons: List[str] = field(default_factory=list)


@dataclass
class IRCResult:
    components: Dict[str, ComponentStat]
    calibration: Calibration
    n_rollouts: int
    success_rate: float
    misalignment_before: float
    misalignment_after: float
    tier_mismatches_before: List[str]
    tier_mismatches_after: List[str]
    rounds: int
    no_signal: Optional[str]
    skipped_lines: List[str]
    excluded_infra: int
    options: IRCOptions


def _pb(x: np.ndarray, o: np.ndarray):
    """point-biserial r and p, or (None, None) when either side is constant."""
    if x.std() == 0 or o.std() == 0:
        return None, None
    r, p = stats.pointbiserialr(o.astype(bool), x)
    return float(r), float(p)


def _bootstrap_ci(x: np.ndarray, o: np.ndarray, b: int, conf: float, rng: np.random.Generator):
    """Percentile bootstrap CI of the correlation (vectorised over resamples, in chunks)."""
    if x.std() == 0 or o.std() == 0 or b <= 0:
        return None
    n = len(x)
    rs = []
    chunk = max(1, min(b, 2_000_000 // max(1, n)))
    done = 0
    while done < b:
        m = min(chunk, b - done)
        idx = rng.integers(0, n, size=(m, n))
        xs, os_ = x[idx], o[idx]
        xm, om = xs.mean(1, keepdims=True), os_.mean(1, keepdims=True)
        cov = ((xs - xm) * (os_ - om)).mean(1)
        sd = xs.std(1) * os_.std(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rs.append(np.where(sd > 0, cov / sd, np.nan))
        done += m
    r = np.concatenate(rs)
    r = r[~np.isnan(r)]
    if not len(r):
        return None
    lo, hi = np.percentile(r, [50 * (1 - conf), 100 - 50 * (1 - conf)])
    return float(lo), float(hi)


def turn_rewards(batch: LogBatch, weights: Dict[str, float], clip) -> np.ndarray:
    w = np.array([weights.get(c, 0.0) for c in COMPONENTS])
    r = np.clip(batch.features @ w, clip[0], clip[1])
    return r * batch.turn_valid()


def estimator_turn_advantages(batch: LogBatch, weights, clip, opts: IRCOptions):
    """(turn advantages (N, K), outcome advantages (N,)) the estimator gives with these weights."""
    r = torch.from_numpy(turn_rewards(batch, weights, clip))
    k = torch.from_numpy(batch.num_turns)
    o = torch.from_numpy(batch.outcome)
    g = torch.from_numpy(batch.group)
    live = torch.ones(batch.n, dtype=torch.bool)
    kw = dict(eps=1e-6, std_norm=True, ddof=1)
    if opts.estimator == "mt_grpo":
        adv, a_o = core.mt_grpo_turn_advantages(r, k, o, g, live, **kw)
    elif opts.estimator == "gtpo_hybrid":
        adv, a_o, _ = core.gtpo_hybrid_turn_advantages(r, k, o, g, live, gamma=opts.gamma, lam=opts.lam,
                                                       pool="group", turn_indexing="zero", **kw)
    else:
        a_o = core.outcome_advantage(o, g, live, **kw)
        adv = a_o.unsqueeze(1).expand_as(r) * torch.from_numpy(batch.turn_valid())
    return adv.numpy(), a_o.numpy()


def component_mean_advantage(batch: LogBatch, adv: np.ndarray) -> Dict[str, Optional[float]]:
    valid = batch.turn_valid()
    out = {}
    for ci, c in enumerate(COMPONENTS):
        fires = (batch.features[:, :, ci] > 0) & valid
        out[c] = float(adv[fires].mean()) if fires.any() else None
    return out


def tier_mismatches(weights: Dict[str, float], mean_adv: Dict[str, Optional[float]]) -> List[str]:
    """Components whose mean advantage points against their weight (the paper's Algorithm 1 check)."""
    out = []
    for c, w in weights.items():
        a = mean_adv.get(c)
        if w != 0 and a is not None and a != 0 and math.copysign(1, a) != math.copysign(1, w):
            out.append(c)
    return out


def misalignment(batch: LogBatch, weights, clip, opts) -> float:
    adv, a_o = estimator_turn_advantages(batch, weights, clip, opts)
    d = core.alignment_diagnostics(torch.from_numpy(adv), torch.from_numpy(a_o), torch.from_numpy(batch.outcome),
                                   torch.from_numpy(batch.turn_valid()), torch.from_numpy(batch.group))
    return d["misalignment_rate"]


def analyze(batch: LogBatch, calibration: Calibration, opts: Optional[IRCOptions] = None,
            sources: Sequence[str] = ()) -> IRCResult:
    opts = opts or IRCOptions()
    rng = np.random.default_rng(opts.seed)
    valid = batch.turn_valid()
    o = batch.outcome
    before = {c: calibration.weights.get(c, 0.0) for c in COMPONENTS}
    skipped = [f"{b.path}:{b.line}: {b.reason}" for b in batch.report.bad]
    n_turns = max(1, int(valid.sum()))
    no_signal = None
    if batch.n == 0:
        no_signal = "no rollouts in the logs"
    elif o.min() == o.max():
        no_signal = (f"no signal: all {batch.n} rollouts {'succeeded' if o[0] else 'failed'}; correlations with the "
                     "outcome are undefined, weights left unchanged")

    comps: Dict[str, ComponentStat] = {}
    after = dict(before)
    for ci, c in enumerate(COMPONENTS):
        x_turn = batch.features[:, :, ci]
        fired = (x_turn > 0) & valid
        x_any = fired.any(1).astype(float)
        with np.errstate(invalid="ignore"):
            x_mean = np.where(batch.num_turns > 0, (x_turn * valid).sum(1) / np.maximum(batch.num_turns, 1), 0.0)
        r_any, p_any = _pb(x_any, o) if not no_signal else (None, None)
        r_mean, p_mean = _pb(x_mean, o) if not no_signal else (None, None)
        x_dec, r_dec, p_dec = (x_any, r_any, p_any) if opts.aggregate == "any" else (x_mean, r_mean, p_mean)
        ci_ = None if no_signal else _bootstrap_ci(x_dec, o, opts.bootstrap, opts.confidence, rng)
        reasons = []
        w = before[c]
        if no_signal:
            tier, new = calibration.tiers.get(c, "untested"), w
        elif r_dec is None:
            tier, new = TIER_NONE, 0.0 if c not in opts.pin else w
            reasons.append("never varies across rollouts (fires in all or none): no evidence")
        else:
            tier = TIER_POS if r_dec > opts.delta else TIER_ANTI if r_dec < -opts.delta else TIER_NONE
            if c in opts.pin:
                new = w
                reasons.append("pinned")
            elif opts.rule == "proportional":
                new = opts.alpha * r_dec if tier != TIER_NONE else 0.0
                reasons.append(f"w = alpha*rho = {new:+.3f}" if tier != TIER_NONE else f"|rho| <= delta={opts.delta}")
            elif tier == TIER_NONE:
                new = 0.0
                if w != 0:
                    reasons.append(f"non-discriminative (|rho|={abs(r_dec):.3f} <= {opts.delta}): {w:+g} -> 0")
            elif w == 0:
                new = round(opts.alpha * r_dec, 4)
                reasons.append(f"discriminative (rho={r_dec:+.3f}) with weight 0: set to alpha*rho")
            elif (r_dec > 0) == (w > 0):
                new = w
                reasons.append("weight points the way the correlation does: kept")
            else:
                new = -w
                reasons.append(f"sign disagrees with rho={r_dec:+.3f}: flipped {w:+g} -> {-w:+g}")
        after[c] = new
        comps[c] = ComponentStat(c, w, float(fired.sum()) / n_turns, float(x_any.mean()) if batch.n else 0.0,
                                 r_any, r_mean, p_dec, ci_, tier, new, reasons=reasons)

    clip = calibration.clip
    if batch.n and not no_signal:
        adv_before = estimator_turn_advantages(batch, before, clip, opts)[0]
        mb = component_mean_advantage(batch, adv_before)
        mism_before = tier_mismatches(before, mb)
        mis_before = misalignment(batch, before, clip, opts)

        def score(w):
            ma_ = component_mean_advantage(batch, estimator_turn_advantages(batch, w, clip, opts)[0])
            return (len([c for c in tier_mismatches(w, ma_) if c not in opts.pin]), misalignment(batch, w, clip, opts))

        # Algorithm 1's check, then a search: every changed component may keep its proposal, drop to 0 or
        # return to its old weight, whichever gives fewer tier mismatches, then a lower turn misalignment.
        best = score(after)
        rounds = 1
        changed = [c for c in COMPONENTS if after[c] != before[c] and c not in opts.pin]
        for rounds in range(1, opts.max_rounds + 1):
            improved = False
            for c in changed:
                for cand in dict.fromkeys([0.0, before[c], after[c]]):
                    if cand == after[c]:
                        continue
                    trial = dict(after)
                    trial[c] = cand
                    sc = score(trial)
                    if sc < best:
                        comps[c].reasons.append(
                            f"round {rounds}: {after[c]:+g} -> {cand:+g} (tier mismatches {best[0]} -> {sc[0]}, "
                            f"{opts.estimator} turn misalignment {best[1]:.3f} -> {sc[1]:.3f})")
                        after, best, improved = trial, sc, True
            if not improved:
                break
        ma = component_mean_advantage(batch, estimator_turn_advantages(batch, after, clip, opts)[0])
        mism_after = tier_mismatches(after, ma)
        for c in COMPONENTS:
            comps[c].mean_advantage_before, comps[c].mean_advantage_after = mb[c], ma[c]
            comps[c].weight_after = after[c]
        mis_after = best[1]
    else:
        mism_before = mism_after = []
        rounds, mis_before, mis_after = 0, float("nan"), float("nan")

    new_cal = copy.deepcopy(calibration)
    new_cal.weights = after
    new_cal.tiers = {c: comps[c].tier for c in COMPONENTS}
    new_cal.name = f"{calibration.name}+irc"
    new_cal.provenance = {
        "source": "mtgrpo irc analyze", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parent": calibration.name, "parent_sha256": calibration.sha256, "logs": list(sources or batch.files),
        "rollouts": int(batch.n), "success_rate": float(o.mean()) if batch.n else None,
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.__dict__.items()},
        "misalignment_before": None if math.isnan(mis_before) else mis_before,
        "misalignment_after": None if math.isnan(mis_after) else mis_after,
    }
    return IRCResult(comps, new_cal, int(batch.n), float(o.mean()) if batch.n else 0.0, mis_before, mis_after,
                     mism_before, mism_after, rounds, no_signal, skipped, batch.excluded_infra, opts)
