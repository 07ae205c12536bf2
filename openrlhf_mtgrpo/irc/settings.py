"""The settings IRC analyses logs under, taken from the logs themselves.

The calibration that scored the rollouts and the estimator settings of the run
(pool, gamma, lam, ...) are recorded on every rollout-log line; IRC starts from
them.  An explicit value that contradicts the logs is refused (:class:`LogError`).

The pool is never guessed: its training default changed from ``group`` to ``turn``, so
for logs that do not record it (written before the estimator settings were logged) a
``gtpo_hybrid`` check needs ``--pool``.  gamma, lam and the other settings kept their
defaults across versions; where the logs lack them the default is assumed and said.

The calibration must weight the logs' component set (:func:`check_axis`); the advantage check
recomputes any registered estimator.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple

from openrlhf_mtgrpo.irc.logs import LogError, LogMeta
from openrlhf_mtgrpo.rewards.calibration import (
    BUILTIN, Calibration, CalibrationError, builtin_schema1, load_calibration,
)


def check_axis(meta: LogMeta, calibration: Calibration) -> None:
    """:class:`LogError` unless ``calibration`` weights the component set the logs were scored with, with
    the same components."""
    if calibration.component_set != meta.component_set:
        raise LogError(f"the rollouts were scored with component set {meta.component_set!r} (domain {meta.domain}); "
                       f"calibration {calibration.name!r} weights set {calibration.component_set!r}: IRC needs a "
                       "calibration of the logs' component set")
    if set(calibration.components) != set(meta.components):
        only_logs = sorted(set(meta.components) - set(calibration.components))
        only_cal = sorted(set(calibration.components) - set(meta.components))
        raise LogError(f"component set {meta.component_set!r} has other components in the logs than in calibration "
                       f"{calibration.name!r} (only in the logs: {only_logs}; only in the calibration: {only_cal}): "
                       "the set changed between the run and now; analyse with the version that wrote the logs")


def _estimators():
    from openrlhf_mtgrpo.registry import is_plugin_estimator, list_advantage_estimators

    return is_plugin_estimator, list_advantage_estimators


def _schema1_match(ref: Optional[str], sha: Optional[str]) -> Optional[Calibration]:
    """Built-in ``ref`` as the schema-1 file the logs were scored with, if ``sha`` is its hash."""
    if not sha or ref not in BUILTIN:
        return None
    old = builtin_schema1(ref)
    return old if old is not None and old.sha256 == sha else None


def resolve_calibration(meta: LogMeta, explicit: Optional[str] = None) -> Tuple[Calibration, List[str]]:
    """(the calibration the logged rollouts were scored with, notes).

    With ``explicit`` (a file or built-in name) it must have the logs' SHA-256; without
    it, the logs' calibration file or built-in of that name is used if its hash matches."""
    notes: List[str] = []
    sha = meta.calibration_sha256
    if explicit:
        cal = load_calibration(explicit)
        old = _schema1_match(explicit, sha) if sha and cal.sha256 != sha else None
        if old is not None:
            notes.append(f"the rollouts were scored with built-in {explicit!r} as its schema-1 file (sha256 "
                         f"{sha[:12]}; the same weights as today's)")
            return old, notes
        if sha and cal.sha256 != sha:
            raise LogError(f"the rollouts were scored with calibration {meta.calibration!r} (sha256 {sha[:12]}); "
                           f"{explicit!r} has sha256 {cal.sha256[:12]}. IRC must start from the weights that scored "
                           "the rollouts: leave --calibration out or pass that file")
        if not sha:
            notes.append(f"the logs do not record their calibration: starting from {explicit!r} as given")
        return cal, notes
    if not sha:
        raise LogError("the logs do not record the calibration that scored them: pass it with --calibration")
    tried = []
    for ref in (meta.calibration_path, meta.calibration):
        if not ref or ref in tried or not (ref in BUILTIN or os.path.exists(ref)):
            continue
        tried.append(ref)
        try:
            cal = load_calibration(ref)
        except CalibrationError:
            continue
        if cal.sha256 == sha:
            return cal, notes
        old = _schema1_match(ref, sha)
        if old is not None:
            notes.append(f"the rollouts were scored with built-in {ref!r} as its schema-1 file (sha256 {sha[:12]}; "
                         "the same weights as today's)")
            return old, notes
    raise LogError(f"the rollouts were scored with calibration {meta.calibration!r} (sha256 {sha[:12]}), but no file "
                   f"with that hash was found (tried: {', '.join(tried) or 'nothing'}): pass it with --calibration")


def options_from_logs(meta: LogMeta, explicit: Dict[str, Any]) -> Tuple[Dict[str, Any], List[str]]:
    """IRCOptions fields for the advantage check: the logs' estimator and settings.

    ``explicit``: the values asked for (None = not given), by name: ``estimator``, the shared options
    (``pool``, ``gamma``, ``eps``, ...) and any option the estimator declares.  They fill what the logs do not
    record and must agree with what they do.  The estimator's own options are returned in
    ``declared_options``.  A setting neither recorded nor given takes its default, and a note says which
    (logs written before a setting was recorded ran with its default then: eps has been 1e-06 in every
    version, and a run that set ``--gtpo.eps`` recorded it)."""
    from openrlhf_mtgrpo.advantages.options import option_fields, option_type, own_option_fields, parse_option_value

    notes: List[str] = []
    out: Dict[str, Any] = {}
    logged = dict(meta.estimator_options)
    registered, listing = _estimators()
    if meta.estimator:
        if registered(meta.estimator):
            logged["estimator"] = meta.estimator
        elif explicit.get("estimator") is None:
            raise LogError(f"the logged run used estimator {meta.estimator!r}, which is not a registered advantage "
                           f"estimator IRC can recompute (OpenRLHF's own are not); choose the closest with --estimator "
                           f"({', '.join(listing())})")
        else:
            notes.append(f"the logged run used estimator {meta.estimator!r}: checking with "
                         f"{explicit['estimator']!r} as asked")
    asked_estimator = explicit.get("estimator")
    if "estimator" in logged:
        if asked_estimator is not None and asked_estimator != logged["estimator"]:
            raise LogError(f"the logged run used estimator={logged['estimator']!r}; you asked for "
                           f"estimator={asked_estimator!r}. IRC checks the advantages the run computed: leave the "
                           "option out")
        out["estimator"] = logged["estimator"]
    elif asked_estimator is not None:
        out["estimator"] = asked_estimator
        if not meta.estimator:
            notes.append(f"estimator={asked_estimator!r} as given (not recorded in the logs)")
    else:
        notes.append("estimator not recorded in the logs: gtpo_hybrid is assumed")
    estimator = out.get("estimator") or "gtpo_hybrid"
    if estimator == "gtpo_hybrid" and "pool" not in logged and explicit.get("pool") is None:
        raise LogError("the logs do not record which turns gtpo_hybrid pooled over (pool); runs from before the "
                       "estimator settings were logged trained with the then-default pool=group, later ones with "
                       "pool=turn. IRC does not guess: pass the pool of the run with --pool group or --pool turn")
    cls = _options_class(estimator)
    known = option_fields(cls)
    own = {f.name for f in own_option_fields(cls)}
    names = {f.name for f in known}
    asked = {k: v for k, v in explicit.items() if k != "estimator" and v is not None}
    unknown = sorted(set(asked) - names)
    if unknown:
        raise LogError(f"estimator {estimator!r} has no option {', '.join(map(repr, unknown))}; its options: "
                       f"{', '.join(sorted(names))}")
    for key, value in asked.items():  # values given as text (--estimator-option NAME=VALUE) take the option's type
        if isinstance(value, str) and option_type(cls, key) is not str:
            try:
                asked[key] = parse_option_value(cls, key, value)
            except ValueError as e:
                raise LogError(f"--estimator-option {key}: {e}") from None
    unused = sorted(set(logged) - names - {"estimator"})
    if unused:
        notes.append(f"the logs record option(s) {', '.join(unused)} that estimator {estimator!r} does not have: "
                     "not used")
    declared: Dict[str, Any] = {}
    for f in known:
        key, value = f.name, asked.get(f.name)
        target = declared if key in own else out
        if key in logged:
            have = logged[key]
            if value is not None and value != have:
                raise LogError(f"the logged run used {key}={have!r}; you asked for {key}={value!r}. IRC checks the "
                               "advantages the run computed: leave the option out")
            target[key] = have
        elif value is not None:
            target[key] = value
            notes.append(f"{key}={value!r} as given (not recorded in the logs)")
        else:
            notes.append(f"{key} not recorded in the logs: the default {f.default!r} is assumed (what a run "
                         "that did not set it used)")
    if declared:
        out["declared_options"] = declared
    return out, notes


def _options_class(estimator: str):
    """The options dataclass of the estimator the check uses (a LogError for an unknown one the user named)."""
    from openrlhf_mtgrpo.registry import UnknownNameError, advantage_estimator_options

    try:
        return advantage_estimator_options(estimator)
    except UnknownNameError as e:
        raise LogError(str(e)) from None
