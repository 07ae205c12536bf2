"""Calibration files: the weights of one component set's per-turn reward components.

A calibration is a small, versioned YAML file::

    schema_version: 2
    component_set: tau                # the registered component set it weights (rewards/sets.py)
    name: paper-irc
    provenance: {source: "...", created: "...", parent_sha256: ..., ...}
    clip: [-1.0, 1.0]                 # per-turn reward is clipped to this range
    components:
      gold_exact: {weight: 1.0, tier: discriminative_positive}
      read_only:  {weight: 0.0, tier: non_discriminative}
      ...

Every component must be one of the set's; components left out have weight 0 (tier
``untested``).  ``schema_version: 1`` files (no ``component_set``) weight the ``tau``
set.  The file's SHA-256 identifies it in logs (``calibration_sha256``); the built-ins
were schema-1 files until issue #19, and logs scored with them still resolve
(:func:`builtin_schema1`).

Weights and clip bounds must be finite numbers (YAML reads ``1e-3`` without a dot
as a string: such numeric strings are accepted, ``.nan``/``.inf`` are refused).  A
tier must agree with its weight: ``discriminative_positive`` > 0,
``anti_discriminative`` < 0, ``non_discriminative`` = 0, ``untested`` any.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import yaml

from openrlhf_mtgrpo.rewards.sets import DEFAULT_SET, ComponentSetError, component_names

SCHEMA_VERSION = 2
#: the versions this module reads (1: no component_set, the tau set)
SCHEMA_VERSIONS = (1, 2)
TIERS = ("discriminative_positive", "non_discriminative", "anti_discriminative", "untested")
HERE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "calibrations")
BUILTIN = {"paper-irc": os.path.join(HERE, "paper_irc.yaml"), "paper-dense": os.path.join(HERE, "paper_dense.yaml"),
           "dual-control-dense": os.path.join(HERE, "dual_control_dense.yaml")}
DEFAULT = "paper-irc"
#: SHA-256 of the built-ins as schema-1 files (before component sets had names): logs scored with them
#: record these (:func:`builtin_schema1`)
BUILTIN_SCHEMA1_SHA256 = {"paper-irc": "f3d25a70961a5d9efc648795e2b9730de2abaa714a0237e50bfd500fd54fdf5c",
                          "paper-dense": "4e0cf85756b19d17c9bc9c112f91cc95eb3abedd49d5cd5062142e0eb8ec3fd2"}
_V2_HEAD, _V1_HEAD = f"schema_version: 2\ncomponent_set: {DEFAULT_SET}\n", "schema_version: 1\n"


class CalibrationError(ValueError):
    pass


def finite_number(value: Any, what: str) -> float:
    """``value`` as a finite float: numbers and numeric strings (``"1e-3"``); never bool, NaN or inf."""
    if isinstance(value, bool):
        raise CalibrationError(f"{what} must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise CalibrationError(f"{what} must be a number, got {value!r}") from None
    if not isinstance(value, (int, float)):
        raise CalibrationError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise CalibrationError(f"{what} must be finite, got {value!r}")
    return float(value)


def tier_problem(tier: str, weight: float) -> Optional[str]:
    """Why ``tier`` contradicts ``weight``, or None."""
    if tier == "discriminative_positive" and not weight > 0:
        return f"tier {tier} needs a positive weight, got {weight:+g}"
    if tier == "anti_discriminative" and not weight < 0:
        return f"tier {tier} needs a negative weight, got {weight:+g}"
    if tier == "non_discriminative" and weight != 0:
        return f"tier {tier} needs weight 0, got {weight:+g}"
    return None


def set_components(component_set: str) -> Tuple[str, ...]:
    """The ordered components of ``component_set``; :class:`CalibrationError` for an unknown set."""
    try:
        return component_names(component_set)
    except ComponentSetError as e:
        raise CalibrationError(str(e)) from None


@dataclass
class Calibration:
    """Weights and tiers of the components of one set.  ``components`` is the set's ordered axis
    (filled from ``component_set`` when not given); weights and tiers name only components of it."""

    name: str
    weights: Dict[str, float]
    tiers: Dict[str, str]
    clip: Tuple[float, float]
    provenance: Dict[str, Any] = field(default_factory=dict)
    sha256: str = ""
    path: Optional[str] = None
    component_set: str = DEFAULT_SET
    components: Tuple[str, ...] = ()

    def __post_init__(self):
        self.components = tuple(self.components) or set_components(self.component_set)

    def turn_reward(self, features: Dict[str, float], gates: Optional[Dict[str, bool]] = None) -> float:
        """The clipped weighted sum of a turn's ``features`` (components it leaves out count 0; EDG's ``gates``
        drop the closed ones); :class:`CalibrationError` for a name outside the set, which would otherwise count
        with weight 0 unnoticed."""
        unknown = [c for c in features if c not in self.components]
        if unknown:
            raise CalibrationError(f"{self.name}: a turn's features name "
                                   f"{unknown_message(sorted(unknown), self.components, self.component_set)}")
        total = sum(self.weights.get(c, 0.0) * v for c, v in features.items()
                    if v and (gates is None or gates.get(c, True)))
        lo, hi = self.clip
        return min(max(total, lo), hi)

    def validate(self) -> "Calibration":
        """Raise :class:`CalibrationError` on a component outside the set, a non-finite weight or clip, or a
        tier that contradicts its weight."""
        unknown = sorted((set(self.weights) | set(self.tiers)) - set(self.components))
        if unknown:
            raise CalibrationError(f"{self.name}: {unknown_message(unknown, self.components, self.component_set)}")
        for c, w in self.weights.items():
            finite_number(w, f"component {c!r} weight")
            problem = tier_problem(self.tiers.get(c, "untested"), w)
            if problem:
                raise CalibrationError(f"{self.name}: component {c!r}: {problem}")
        lo, hi = (finite_number(v, "clip bound") for v in self.clip)
        if lo >= hi:
            raise CalibrationError(f"{self.name}: clip must be [low, high] with low < high, got {list(self.clip)}")
        return self

    def to_yaml_dict(self) -> Dict[str, Any]:
        self.validate()
        return {"schema_version": SCHEMA_VERSION, "component_set": self.component_set, "name": self.name,
                "provenance": self.provenance, "clip": list(self.clip),
                "components": {c: {"weight": float(self.weights.get(c, 0.0)), "tier": self.tiers.get(c, "untested")}
                               for c in self.components}}

    def save(self, path: str) -> str:
        text = yaml.safe_dump(self.to_yaml_dict(), sort_keys=False)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
        self.path, self.sha256 = path, hashlib.sha256(text.encode()).hexdigest()
        return path


def unknown_message(unknown, names, component_set: str) -> str:
    return (f"unknown component(s) {list(unknown)}; known components: {', '.join(names)} "
            f"(component set {component_set!r})")


def parse_calibration(text: str, source: str = "<string>") -> Calibration:
    """A calibration from YAML text (schema 1 or 2), validated against its component set."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CalibrationError(f"{source}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{source}: a calibration must be a mapping")
    version = data.get("schema_version")
    if isinstance(version, bool) or version not in SCHEMA_VERSIONS:
        raise CalibrationError(f"{source}: schema_version must be one of {', '.join(map(str, SCHEMA_VERSIONS))}, got "
                               f"{version!r}" + (" (written by a newer version of openrlhf-mtgrpo?)"
                                                 if isinstance(version, int) and version > SCHEMA_VERSION else ""))
    known_top = {"schema_version", "name", "provenance", "clip", "components"} | ({"component_set"} if version >= 2
                                                                                   else set())
    unknown_top = set(data) - known_top
    if unknown_top:
        raise CalibrationError(f"{source}: unknown top-level keys {sorted(unknown_top)}"
                               + (" (component_set needs schema_version 2)" if "component_set" in unknown_top else ""))
    if version >= 2:
        component_set = data.get("component_set")
        if not isinstance(component_set, str) or not component_set.strip():
            raise CalibrationError(f"{source}: schema_version 2 needs 'component_set', the name of the component set "
                                   f"it weights (the built-in one: {DEFAULT_SET})")
    else:
        component_set = DEFAULT_SET
    try:
        names = component_names(component_set)
    except ComponentSetError as e:
        raise CalibrationError(f"{source}: {e}") from None
    comps = data.get("components")
    if not isinstance(comps, dict) or not comps:
        raise CalibrationError(f"{source}: 'components' must be a non-empty mapping")
    unknown = sorted(set(comps) - set(names))
    if unknown:
        raise CalibrationError(f"{source}: {unknown_message(unknown, names, component_set)}")
    weights, tiers = {}, {}
    for c, spec in comps.items():
        if not isinstance(spec, dict):
            spec = {"weight": spec}
        if "weight" not in spec:
            raise CalibrationError(f"{source}: component {c!r} needs a numeric 'weight'")
        try:
            weight = finite_number(spec["weight"], "weight")
        except CalibrationError as e:
            raise CalibrationError(f"{source}: component {c!r} needs a numeric 'weight': {e}") from None
        extra = set(spec) - {"weight", "tier"}
        if extra:
            raise CalibrationError(f"{source}: component {c!r} has unknown keys {sorted(extra)}")
        tier = spec.get("tier", "untested")
        if tier not in TIERS:
            raise CalibrationError(f"{source}: component {c!r} has tier {tier!r}; tiers: {', '.join(TIERS)}")
        problem = tier_problem(tier, weight)
        if problem:
            raise CalibrationError(f"{source}: component {c!r}: {problem}")
        weights[c], tiers[c] = weight, tier
    clip = data.get("clip", [-1.0, 1.0])
    if not isinstance(clip, (list, tuple)) or len(clip) != 2:
        raise CalibrationError(f"{source}: 'clip' must be [low, high] with low < high, got {clip!r}")
    try:
        clip = [finite_number(v, "clip bound") for v in clip]
    except CalibrationError as e:
        raise CalibrationError(f"{source}: 'clip' must be [low, high] with low < high: {e}") from None
    if clip[0] >= clip[1]:
        raise CalibrationError(f"{source}: 'clip' must be [low, high] with low < high, got {clip!r}")
    prov = data.get("provenance") or {}
    if not isinstance(prov, dict):
        raise CalibrationError(f"{source}: 'provenance' must be a mapping")
    return Calibration(name=str(data.get("name") or os.path.basename(source)), weights=weights, tiers=tiers,
                       clip=(float(clip[0]), float(clip[1])), provenance=prov,
                       sha256=hashlib.sha256(text.encode()).hexdigest(), component_set=component_set,
                       components=names)


def load_calibration(path_or_name: Optional[str] = None) -> Calibration:
    """A calibration from a file path, or a built-in name (``paper-irc`` default, ``paper-dense``)."""
    ref = path_or_name or DEFAULT
    path = BUILTIN.get(ref, ref)
    if not os.path.exists(path):
        raise CalibrationError(f"calibration {ref!r} not found (built-ins: {', '.join(BUILTIN)})")
    with open(path) as f:
        cal = parse_calibration(f.read(), path)
    cal.path = path
    return cal


def calibration_hash_for(path_or_name: Optional[str]) -> str:
    return load_calibration(path_or_name).sha256


def builtin_schema1(name: str) -> Optional[Calibration]:
    """Built-in ``name`` as the schema-1 file it was (same weights, tiers and clip; ``sha256`` the one logs
    scored with it record, :data:`BUILTIN_SCHEMA1_SHA256`), or None for a name without one.

    Its text is the current file's with the schema-2 header (``schema_version: 2``, ``component_set: tau``)
    replaced by ``schema_version: 1``; it is returned only when that text has the recorded hash."""
    want = BUILTIN_SCHEMA1_SHA256.get(name)
    if want is None:
        return None
    with open(BUILTIN[name]) as f:
        text = f.read()
    if not text.startswith(_V2_HEAD):
        return None
    old = _V1_HEAD + text[len(_V2_HEAD):]
    if hashlib.sha256(old.encode()).hexdigest() != want:
        return None
    cal = parse_calibration(old, f"{BUILTIN[name]} (as schema 1)")
    return cal
