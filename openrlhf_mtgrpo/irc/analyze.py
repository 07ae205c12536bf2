"""IRC analysis: how well each per-turn reward component separates success from failure.

For every component: how many rollouts it fired in, the point-biserial correlation
of its per-rollout aggregate with the outcome (``scipy.stats.pointbiserialr``;
aggregates "any" -- the component fired in some turn, the paper's presence test --
and "mean" over turns), the p-value of "no association" (Fisher's exact test for the
0/1 "any" aggregate, the t-test of the point-biserial r otherwise), and a bootstrap
interval, both corrected for testing m components at once (Bonferroni: p * m, and
intervals at 1 - (1 - confidence) / m, each resampled often enough that at least
``MIN_TAIL_DRAWS`` draws lie beyond either end).  A weight changes only on evidence
(docs/irc.md):

* *positive* / *anti*: the adjusted p-value is below 1 - confidence, the interval
  excludes 0 and |rho| > delta -> the weight takes that sign (kept, flipped, or
  alpha * rho when it was 0);
* *null*: the interval lies inside (-delta, delta) -> weight 0 (``non_discriminative``);
* anything else (inconclusive, too few rollouts where it fired or did not, pinned)
  -> weight and tier kept.

Then the paper's checks on the advantages the run's estimator produces (recomputed
from the logged components, with the run's pool/gamma/lam): Algorithm 1's sign check
per component, the per-component misalignment (advantage sign against the direction
the evidence gives the component), the turn-level misalignment, and the stopping
rule Corr(mean per-turn reward, outcome) > eta.  A calibration that is worse than
its input on any of these is still written, with a warning that says so.  Both sets
of weights are checked with the EDG gates each episode was scored with (when the logs
record any), so the weights are the only difference between "before" and "after".
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from scipy import stats

from openrlhf_mtgrpo.advantages import core
from openrlhf_mtgrpo.advantages.turn_level import turn_advantages
from openrlhf_mtgrpo.advantages.options import EstimatorOptions, build_options, options_record, shared_option_names
from openrlhf_mtgrpo.irc.logs import LogBatch
from openrlhf_mtgrpo.irc.settings import check_axis
from openrlhf_mtgrpo.registry import advantage_estimator_options, is_plugin_estimator, list_advantage_estimators
from openrlhf_mtgrpo.rewards.calibration import Calibration
from openrlhf_mtgrpo.rewards.evidence import (  # noqa: F401 - the rule IRC shares with EDG; names kept importable here
    MIN_TAIL_DRAWS, association_p_value, bootstrap_ci, bootstrap_draws, decide, is_binary,
)
from openrlhf_mtgrpo.rewards.sets import default_pins

TIER_POS, TIER_NONE, TIER_ANTI = "discriminative_positive", "non_discriminative", "anti_discriminative"
EVIDENCE_TIER = {"positive": TIER_POS, "anti": TIER_ANTI, "null": TIER_NONE}
#: significant digits of a new weight alpha * rho (never rounds a non-zero weight to 0)
WEIGHT_DIGITS = 4


@dataclass
class IRCOptions(EstimatorOptions):
    """IRC's own options, and the settings of the run's estimator its advantage check recomputes: every shared
    option of :class:`~openrlhf_mtgrpo.advantages.options.EstimatorOptions` (inherited: its fields, defaults and
    checks, eps included) and, in ``declared_options``, the options the estimator declares itself."""

    delta: float = 0.05  # |rho| of a discriminative component must exceed this (not reported by the paper)
    alpha: float = 1.0  # scale of alpha * rho, > 0 (not reported by the paper)
    rule: str = "keep_flip_zero"  # or "proportional": w = alpha * rho on evidence of discrimination
    aggregate: str = "any"  # which per-rollout aggregate decides: "any" (paper) or "mean"
    confidence: float = 0.99  # family-wise: each of m tested components uses 1 - (1 - confidence) / m
    min_rollouts: int = 10  # a component is tested only if it fired in >= this many rollouts and was absent in as many
    bootstrap: int = 2000  # at least; more where the corrected level needs them (MIN_TAIL_DRAWS)
    seed: int = 0
    pin: Optional[Sequence[str]] = None  # weights never changed; None: the component set's own pins
    eta: float = 0.2  # stopping rule: Corr(mean per-turn reward, outcome) > eta (not reported by the paper)
    # the advantage check: any registered estimator, and the settings of the run (read from the logs by the CLI)
    estimator: str = "gtpo_hybrid"
    declared_options: Dict[str, Any] = field(default_factory=dict)  # the estimator's own options (by field name)

    def __post_init__(self):
        if self.rule not in ("keep_flip_zero", "proportional"):
            raise ValueError(f"rule must be keep_flip_zero or proportional, got {self.rule!r}")
        if self.aggregate not in ("any", "mean"):
            raise ValueError(f"aggregate must be any or mean, got {self.aggregate!r}")
        if not is_plugin_estimator(self.estimator):
            raise ValueError(f"unknown estimator {self.estimator!r}; IRC recomputes the registered advantage "
                             f"estimators: {', '.join(list_advantage_estimators())}")
        super().__post_init__()  # the shared options' checks (gamma, lam, eps, pool, ...)
        self.estimator_options()  # the estimator's own options: known names, their checks
        if not 0.5 <= self.confidence < 1:
            raise ValueError(f"confidence must be in [0.5, 1), got {self.confidence}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"--alpha must be a finite number > 0 (new weights are alpha * rho), got {self.alpha}")
        if not (math.isfinite(self.delta) and 0 <= self.delta < 1):
            raise ValueError(f"--delta must be in [0, 1), got {self.delta}")
        if not (math.isfinite(self.eta) and -1 <= self.eta < 1):
            raise ValueError(f"--eta must be in [-1, 1), got {self.eta}")
        if self.min_rollouts < 1 or self.bootstrap < 100:
            raise ValueError("min_rollouts must be >= 1 and bootstrap >= 100")
        if isinstance(self.pin, str):
            raise ValueError(f"pin must be a list of component names, got the string {self.pin!r}")

    def estimator_options(self) -> EstimatorOptions:
        """The options the estimator receives in the advantage check: an instance of the class it registered."""
        cls = advantage_estimator_options(self.estimator)
        shared = {name: getattr(self, name) for name in shared_option_names()}
        return build_options(cls, {**shared, **self.declared_options}, f"estimator {self.estimator!r}")

    def estimator_settings(self) -> Dict[str, Any]:
        """The estimator and every option of the advantage check, by name (as the logs record them)."""
        return {"estimator": self.estimator, **options_record(self.estimator_options())}

    def for_components(self, components: Sequence[str], component_set: str) -> "IRCOptions":
        """These options with ``pin`` resolved for this axis (None: the set's own pins); ValueError for a
        pin outside it."""
        pin = tuple(default_pins(component_set)) if self.pin is None else tuple(self.pin)
        bad = sorted(set(pin) - set(components))
        if bad:
            raise ValueError(f"unknown component(s) to pin {bad}; known ({component_set}): {', '.join(components)}")
        return dataclasses.replace(self, pin=pin)


@dataclass
class ComponentStat:
    name: str
    weight_before: float
    tier_before: str
    fired_rollouts: int
    n_rollouts: int
    fired_turns: int
    n_turns: int
    rho_any: Optional[float]
    rho_mean: Optional[float]
    p_value: Optional[float]
    p_adjusted: Optional[float]
    ci: Optional[tuple]
    ci_level: Optional[float]
    evidence: str  # positive | anti | null | inconclusive | too_few | no_variation | no_signal
    tier: str
    weight_after: float
    pinned: bool = False
    mean_advantage_before: Optional[float] = None
    mean_advantage_after: Optional[float] = None
    opposing_before: Optional[int] = None  # turns whose advantage opposes the component's direction
    opposing_after: Optional[int] = None
    judged_turns_before: Optional[int] = None
    judged_turns_after: Optional[int] = None
    reasons: List[str] = field(default_factory=list)
    p_method: Optional[str] = None  # fisher_exact (0/1 aggregate) or pointbiserial_t
    fired_in_success: int = 0  # rollouts it fired in that succeeded (of n_success)
    fired_in_failure: int = 0

    @property
    def turn_rate(self) -> float:
        return self.fired_turns / self.n_turns if self.n_turns else 0.0

    @property
    def rollout_rate(self) -> float:
        return self.fired_rollouts / self.n_rollouts if self.n_rollouts else 0.0

    @property
    def direction(self) -> int:
        return {"positive": 1, "anti": -1}.get(self.evidence, 0)


@dataclass
class Checks:
    """The paper's checks for one set of weights."""

    turn_misalignment: float  # share of judged turns whose advantage opposes the outcome advantage
    misaligned_turns: int
    judged_turns: int
    component_opposing_rate: float  # share of turns of directed components whose advantage opposes the direction
    component_opposing: int
    component_turns: int
    misaligned_components: List[str]  # mean advantage against the evidence's direction
    tier_mismatches: List[str]  # Algorithm 1: mean advantage against the weight's sign
    reward_outcome_corr: Optional[float]  # stopping rule: Corr(mean per-turn reward, outcome)
    reward_outcome_p: Optional[float]


@dataclass
class IRCResult:
    components: Dict[str, ComponentStat]
    calibration: Calibration
    n_rollouts: int
    n_success: int
    success_rate: float
    before: Optional[Checks]
    after: Optional[Checks]
    converged: bool  # the paper's stopping rule holds for the new weights
    changes: List[str]
    warnings: List[str]
    no_signal: Optional[str]
    skipped_lines: List[str]
    excluded_infra: int
    options: IRCOptions
    tested: int  # components tested (the Bonferroni m)
    meta: Any = None  # irc.logs.LogMeta
    bootstrap_draws: int = 0  # resamples per interval (at least options.bootstrap)

    @property
    def writable(self) -> bool:
        """A calibration is written only from rollouts with both outcomes."""
        return self.no_signal is None

    # the names the demo and older callers use
    @property
    def misalignment_before(self) -> float:
        return self.before.turn_misalignment if self.before else float("nan")

    @property
    def misalignment_after(self) -> float:
        return self.after.turn_misalignment if self.after else float("nan")

    @property
    def tier_mismatches_before(self) -> List[str]:
        return self.before.tier_mismatches if self.before else []

    @property
    def tier_mismatches_after(self) -> List[str]:
        return self.after.tier_mismatches if self.after else []


def _pb(x: np.ndarray, o: np.ndarray):
    """point-biserial r and p, or (None, None) when either side is constant."""
    if x.std() == 0 or o.std() == 0:
        return None, None
    r, p = stats.pointbiserialr(o.astype(bool), x)
    return float(r), float(p)


def turn_rewards(batch: LogBatch, weights: Dict[str, float], clip, gates: Optional[np.ndarray] = None) -> np.ndarray:
    """(N, K) clipped per-turn rewards; ``gates`` (N, C) drops gated-out components per rollout (EDG)."""
    w = np.array([weights.get(c, 0.0) for c in batch.components])
    if gates is None:
        r = batch.features @ w
    else:
        r = np.einsum("nkc,nc->nk", batch.features, gates * w[None, :])
    r = np.clip(r, clip[0], clip[1])
    return r * batch.turn_valid()


def estimator_turn_advantages(batch: LogBatch, weights, clip, opts: IRCOptions, gates=None):
    """(turn advantages (N, K), outcome advantages (N,)) the run's estimator gives with these weights: the
    registered estimator ``opts.estimator``, called as training calls it (:func:`turn_advantages`)."""
    r = torch.from_numpy(turn_rewards(batch, weights, clip, gates))
    out = turn_advantages(opts.estimator, r, torch.from_numpy(batch.num_turns), torch.from_numpy(batch.outcome),
                          torch.from_numpy(batch.group), options=opts.estimator_options())
    return out.turn.numpy(), out.outcome.numpy()


def component_mean_advantage(batch: LogBatch, adv: np.ndarray) -> Dict[str, Optional[float]]:
    valid = batch.turn_valid()
    out = {}
    for ci, c in enumerate(batch.components):
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


def reward_outcome_corr(batch: LogBatch, weights, clip, gates=None):
    """The paper's stopping statistic: Corr(mean per-turn reward of a rollout, its outcome), and its p-value."""
    r = turn_rewards(batch, weights, clip, gates).sum(1) / np.maximum(batch.num_turns, 1)
    return _pb(r, batch.outcome)


def run_checks(batch: LogBatch, weights, clip, opts: IRCOptions, direction: np.ndarray, gates=None):
    """(Checks, per-component mean advantages, ``core.component_alignment`` output) for these weights."""
    adv, a_o = estimator_turn_advantages(batch, weights, clip, opts, gates)
    t = torch.from_numpy
    valid = t(batch.turn_valid())
    d = core.alignment_diagnostics(t(adv), t(a_o), t(batch.outcome), valid, t(batch.group))
    comp = core.component_alignment(t(adv), t(batch.features > 0), valid, t(direction))
    mean_adv = component_mean_advantage(batch, adv)
    corr, p = reward_outcome_corr(batch, weights, clip, gates)
    checks = Checks(
        turn_misalignment=d["misalignment_rate"], misaligned_turns=int(d["misaligned_turns"]),
        judged_turns=int(d["judged_turns"]), component_opposing_rate=float(comp["opposing_rate"]),
        component_opposing=int(comp["opposing"][comp["judged"]].sum()),
        component_turns=int(comp["turns"][comp["judged"]].sum()),
        misaligned_components=[c for i, c in enumerate(batch.components)
                               if comp["judged"][i] and not comp["agrees"][i]],
        tier_mismatches=tier_mismatches(weights, mean_adv), reward_outcome_corr=corr, reward_outcome_p=p)
    return checks, mean_adv, comp


def scaled_weight(alpha: float, rho: float) -> float:
    """alpha * rho to :data:`WEIGHT_DIGITS` significant digits: never 0 or of the other sign for rho != 0
    (rounding to decimals turned alpha = 1e-5 into -0.0, a weight its tier contradicts)."""
    new = float(f"{alpha * rho:.{WEIGHT_DIGITS}g}")
    if rho != 0 and (new == 0 or math.copysign(1, new) != math.copysign(1, rho)):
        raise ValueError(f"alpha * rho = {alpha!r} * {rho!r} is not a usable weight (it underflows to 0): "
                         "choose a larger --alpha")
    return new


def _new_weight(w: float, evidence: str, rho: float, opts: IRCOptions) -> tuple:
    """(new weight, reason) on evidence of discrimination ("positive"/"anti") or of none ("null")."""
    if evidence == "null":
        return 0.0, "no discrimination: weight 0" if w != 0 else "no discrimination: weight stays 0"
    sign = 1.0 if evidence == "positive" else -1.0
    if opts.rule == "proportional":
        new = scaled_weight(opts.alpha, rho)
        return new, f"w = alpha * rho = {new:+g}"
    if w == 0:
        new = scaled_weight(opts.alpha, rho)
        return new, f"weight 0 but discriminative: set to alpha * rho = {new:+g}"
    if math.copysign(1, w) == sign:
        return w, "weight points the way the evidence does: kept"
    return -w, f"weight points against the evidence: flipped {w:+g} -> {-w:+g}"


def settings_mismatch(meta, opts: IRCOptions) -> List[str]:
    """The advantage-check settings in ``opts`` that contradict what the logs record (``LogMeta``): the estimator,
    every shared option (eps included) and every option the estimator declares."""
    if meta is None:
        return []
    logged = dict(meta.estimator_options or {})
    if meta.estimator and is_plugin_estimator(meta.estimator):
        logged["estimator"] = meta.estimator
    check = opts.estimator_settings()
    return [f"{k}: logs {v!r}, check {check[k]!r}" for k, v in sorted(logged.items())
            if k in check and check[k] != v]


def analyze(batch: LogBatch, calibration: Calibration, opts: Optional[IRCOptions] = None,
            sources: Sequence[str] = ()) -> IRCResult:
    """Evidence per component, the new calibration and the paper's checks before and after (module docstring).

    The components are the logs' (``batch.components``), which must be the calibration's set's."""
    axis = batch.components
    check_axis(batch.meta, calibration)
    opts = (opts or IRCOptions()).for_components(axis, calibration.component_set)
    rng = np.random.default_rng(opts.seed)
    valid = batch.turn_valid()
    o = batch.outcome
    n = batch.n
    before = {c: float(calibration.weights.get(c, 0.0)) for c in axis}
    tiers_before = {c: calibration.tiers.get(c, "untested") for c in axis}
    skipped = [f"{b.path}:{b.line}: {b.reason}" for b in batch.report.bad]
    n_turns = int(valid.sum())
    n_success = int(o.sum()) if n else 0
    no_signal = None
    if n == 0:
        no_signal = "no rollouts in the logs: nothing to calibrate, no calibration written"
    elif o.min() == o.max():
        no_signal = (f"no signal: all {n} rollouts {'succeeded' if o[0] else 'failed'}; correlations with the "
                     "outcome are undefined, weights unchanged, no calibration written")

    # per component: counts, correlations, p-values; which components are tested
    raw = {}
    for ci, c in enumerate(axis):
        fired = (batch.features[:, :, ci] > 0) & valid
        x_any = fired.any(1).astype(float)
        x_mean = (batch.features[:, :, ci] * valid).sum(1) / np.maximum(batch.num_turns, 1) if n else x_any
        r_any = _pb(x_any, o)[0] if not no_signal else None
        r_mean = _pb(x_mean, o)[0] if not no_signal else None
        x, r = (x_any, r_any) if opts.aggregate == "any" else (x_mean, r_mean)
        p, method = association_p_value(x, o) if not no_signal else (None, None)
        k = int(x_any.sum())
        if no_signal:
            state = "no_signal"
        elif r is None:
            state = "no_variation"
        elif min(k, n - k) < opts.min_rollouts:
            state = "too_few"
        else:
            state = "test"
        raw[c] = dict(fired_rollouts=k, fired_turns=int(fired.sum()), r_any=r_any, r_mean=r_mean, x=x, r=r, p=p,
                      method=method, state=state, in_success=int((x_any * o).sum()) if n else 0)
    tested = [c for c in axis if raw[c]["state"] == "test" and c not in opts.pin]
    m = max(1, len(tested))
    significance = 1 - opts.confidence  # family-wise
    level = 1 - significance / m
    draws = bootstrap_draws(opts.bootstrap, level)

    comps: Dict[str, ComponentStat] = {}
    after, tiers_after, changes, warnings = dict(before), dict(tiers_before), [], []
    mismatch = settings_mismatch(getattr(batch, "meta", None), opts)
    if mismatch:
        warnings.append("the advantage check does not use the settings the logs record (" + "; ".join(mismatch)
                        + "): its numbers are not what training computed")
    for c in axis:
        d, w = raw[c], before[c]
        ci = p_adj = None
        reasons = []
        if d["state"] == "test":
            ci = bootstrap_ci(d["x"], o, draws, level, rng)
            p_adj = min(1.0, d["p"] * m) if c not in opts.pin else d["p"]
            evidence = decide(d["r"], ci, p_adj, opts.delta, significance) if ci else "inconclusive"
        else:
            evidence = d["state"]
        stat = (f"rho {d['r']:+.3f}, {level:.2%} CI [{ci[0]:+.3f}, {ci[1]:+.3f}], p {format_p(d['p'])} "
                f"({d['method'].replace('_', ' ')}), adjusted {format_p(p_adj)}") if ci else ""
        if c in opts.pin:
            agrees = (evidence == "positive" and w > 0) or (evidence == "anti" and w < 0) or \
                (evidence == "null" and w == 0)
            if agrees:
                tiers_after[c] = EVIDENCE_TIER[evidence]
            reasons.append(f"pinned: weight kept ({evidence.replace('_', ' ')} evidence"
                           + (f"; {stat}" if stat else "") + ")")
            contradicts = (evidence == "positive" and w < 0) or (evidence == "anti" and w > 0) or \
                (evidence == "null" and w != 0)
            if contradicts:
                warnings.append(f"pinned component {c} (weight {w:+g}) has {evidence} evidence "
                                f"(rho {d['r']:+.3f}, CI [{ci[0]:+.3f}, {ci[1]:+.3f}]): check it by hand")
        elif evidence in ("positive", "anti", "null"):
            after[c], why = _new_weight(w, evidence, d["r"], opts)
            tiers_after[c] = EVIDENCE_TIER[evidence]
            reasons.append(f"{evidence} evidence ({stat}): {why}")
        elif evidence == "inconclusive":
            reasons.append(f"inconclusive ({stat}): needs adjusted p < {significance:g} with the interval beyond 0 "
                           f"and |rho| > {opts.delta}, or the interval within +-{opts.delta}: kept")
        elif evidence == "too_few":
            k = d["fired_rollouts"]
            side = f"fired in only {k} of {n} rollouts" if k < opts.min_rollouts else \
                f"absent from only {n - k} of {n} rollouts"
            reasons.append(f"{side}, fewer than --min-rollouts {opts.min_rollouts} (a component is tested only "
                           f"with at least {opts.min_rollouts} rollouts with it and as many without): kept")
        elif evidence == "no_variation":
            reasons.append(f"fired in {'all' if d['fired_rollouts'] else 'none'} of the {n} rollouts: "
                           "no evidence, kept")
        if after[c] != w:
            changes.append(f"{c}: {w:+g} -> {after[c]:+g} ({evidence} evidence)")
        comps[c] = ComponentStat(
            c, w, tiers_before[c], d["fired_rollouts"], n, d["fired_turns"], n_turns, d["r_any"], d["r_mean"], d["p"],
            p_adj, ci, level if ci else None, evidence, tiers_after[c], after[c], pinned=c in opts.pin,
            reasons=reasons, p_method=d["method"], fired_in_success=d["in_success"],
            fired_in_failure=d["fired_rollouts"] - d["in_success"])

    clip = calibration.clip
    checks_before = checks_after = None
    converged = False
    if not no_signal:
        direction = np.array([float(comps[c].direction) for c in axis])
        # like for like: both sets of weights with the gates each episode was scored with
        checks_before, mb, cb = run_checks(batch, before, clip, opts, direction, batch.gates)
        checks_after, ma, ca = run_checks(batch, after, clip, opts, direction, batch.gates)
        for i, c in enumerate(axis):
            s = comps[c]
            s.mean_advantage_before, s.mean_advantage_after = mb[c], ma[c]
            if cb["judged"][i]:
                s.opposing_before, s.judged_turns_before = int(cb["opposing"][i]), int(cb["turns"][i])
                s.opposing_after, s.judged_turns_after = int(ca["opposing"][i]), int(ca["turns"][i])
        corr = checks_after.reward_outcome_corr
        converged = not checks_after.tier_mismatches and corr is not None and corr > opts.eta
        b, a = checks_before, checks_after
        worse = []
        if a.component_opposing_rate > b.component_opposing_rate + 1e-12:
            worse.append(f"per-component misalignment {b.component_opposing_rate:.3f} -> "
                         f"{a.component_opposing_rate:.3f}")
        if len(a.misaligned_components) > len(b.misaligned_components):
            worse.append(f"components whose advantage opposes their direction {len(b.misaligned_components)} -> "
                         f"{len(a.misaligned_components)}")
        if len(a.tier_mismatches) > len(b.tier_mismatches):
            worse.append(f"Algorithm 1 tier mismatches {len(b.tier_mismatches)} -> {len(a.tier_mismatches)}")
        if a.turn_misalignment > b.turn_misalignment + 1e-12:
            worse.append(f"turn misalignment ({opts.estimator}) {b.turn_misalignment:.3f} -> {a.turn_misalignment:.3f}")
        if b.reward_outcome_corr is not None and (a.reward_outcome_corr or 0.0) < b.reward_outcome_corr - 1e-12:
            worse.append(f"Corr(mean turn reward, outcome) {b.reward_outcome_corr:+.3f} -> "
                         f"{_fmt(a.reward_outcome_corr)}")
        if worse and changes:
            warnings.append("the new calibration is WORSE than its input on: " + "; ".join(worse))
    if getattr(batch, "meta", None) is not None:
        warnings = list(batch.meta.warnings) + warnings

    new_cal = copy.deepcopy(calibration)
    new_cal.weights, new_cal.tiers = after, tiers_after
    new_cal.name = f"{calibration.name}+irc"
    meta = getattr(batch, "meta", None)
    new_cal.provenance = {
        "source": "mtgrpo irc analyze", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "parent": calibration.name, "parent_sha256": calibration.sha256, "logs": list(sources or batch.files),
        "benchmark": meta.benchmark if meta else None,
        "rollouts": int(n), "successes": n_success, "groups": int(len(np.unique(batch.group))) if n else 0,
        "grouping": meta.grouping if meta else None, "excluded_infrastructure_failures": int(batch.excluded_infra),
        "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.__dict__.items()},
        "tested_components": m if tested else 0, "interval_level": level, "bootstrap_draws": draws,
        "significance": significance, "edg_gated_episodes": int(meta.edg_gated_episodes) if meta else 0,
        "changes": changes, "warnings": warnings, "converged": converged,
        "checks_before": _checks_dict(checks_before), "checks_after": _checks_dict(checks_after),
    }
    new_cal.validate()
    return IRCResult(comps, new_cal, int(n), n_success, n_success / n if n else 0.0, checks_before, checks_after,
                     converged, changes, warnings, no_signal, skipped, batch.excluded_infra, opts,
                     len(tested), meta, draws)


def _fmt(v):
    return "n/a" if v is None else f"{v:+.3f}"


def format_p(v: Optional[float]) -> str:
    """A p-value as printed: two significant digits, ``<1e-4`` below that, ``n/a`` for None."""
    return "n/a" if v is None else (f"{v:.2g}" if v >= 1e-4 else "<1e-4")


def _checks_dict(c: Optional[Checks]):
    return None if c is None else {k: v for k, v in c.__dict__.items()}
