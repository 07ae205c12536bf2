"""The options of the advantage estimators: one dataclass, from which everything else is generated.

:class:`EstimatorOptions` holds the options every turn-level estimator shares.  Each field is declared
with :func:`option` (its default, its flag's help text, its allowed values and a check), and from these
fields come:

* the launcher's flags ``--gtpo.<field>`` with the flat alias ``--gtpo_<field>`` (a bool that defaults to
  True is turned off by ``--gtpo.no_<field>``), and so the recipe keys ``gtpo.<field>``;
* the checks a run is refused on before it starts (``--gtpo.gamma must be in (0, 1] (got 1.5)``) and the
  checks of the dataclass itself;
* the record of the options on every rollout-log and step-log line (:func:`options_record`);
* the settings ``mtgrpo irc`` reads back from the logs and recomputes the advantages with.

A registered estimator may declare options of its own: a dataclass that subclasses
:class:`EstimatorOptions` and adds fields declared with :func:`option`, passed as
``register_advantage_estimator(name, fn, options=MyOptions)``.  Its own fields become flags in the
estimator's namespace, ``--<estimator>.<field>`` (flat ``--<estimator>_<field>``, recipe key
``<estimator>.<field>``), beside the shared ``--gtpo.*`` ones; the estimator receives one ``MyOptions``
instance, shared values and its own, in ``EstimatorInput.options``.  One namespace per estimator means
two estimators may declare options of the same name, and an option's flag says whose it is.

Standard library only: the argparse hook and ``mtgrpo irc --help`` generate flags from it without torch.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

#: the namespace of the shared options' flags and recipe keys
SHARED_NAMESPACE = "gtpo"
#: top-level argument namespaces of OpenRLHF 0.11's launcher and of the plugin: an estimator of one of these
#: names cannot declare options (its flags would land in that namespace)
RESERVED_NAMESPACES = ("actor", "algo", "ckpt", "critic", "data", "ds", "eval", "logger", "ref", "reward", "rollout",
                       "train", "vllm", "gtpo", "mtgrpo", "mtgrpo_carrier", "config")

Check = Tuple[Callable[[Any], bool], str]


def option(default: Any, help: str, *, choices: Optional[Sequence[Any]] = None, check: Optional[Check] = None,
           flag: Optional[str] = None):
    """A field of an options dataclass.

    ``help``: the flag's help text; ``choices``: the allowed values; ``check``: ``(predicate, text)``, where
    ``predicate(value)`` is True for a valid value and ``text`` completes "must be ..." (``"in (0, 1]"``);
    ``flag``: the flag's name where it is not the field's (``"no_std_norm"`` for a bool field that defaults to
    True: the flag turns it off)."""
    if flag is not None and not (isinstance(default, bool) and default and flag.startswith("no_")):
        raise ValueError(f"flag={flag!r}: only a bool option that defaults to True has a flag of its own, 'no_<name>'")
    return field(default=default, metadata={"help": help, "choices": tuple(choices) if choices else None,
                                            "check": check, "flag": flag, "option": True})


def _finite(v) -> bool:
    return math.isfinite(v)


@dataclass
class EstimatorOptions:
    """Options of the turn-level estimators (``--gtpo.*`` flags, ``gtpo.*`` recipe keys); docs/method.md."""

    gamma: float = option(0.9, "GTPO hybrid discount (paper: 0.9)", check=(lambda v: 0.0 < v <= 1.0, "in (0, 1]"))
    lam: float = option(0.3, "weight of the outcome advantage (paper: 0.3)",
                        check=(lambda v: _finite(v) and v >= 0.0, ">= 0"))
    eps: float = option(1e-6, "epsilon of group normalisation", check=(lambda v: _finite(v) and v > 0.0, "> 0"))
    # False: Dr. GRPO style, mean-centring only
    std_norm: bool = option(True, "mean-centre only (Dr. GRPO style)", flag="no_std_norm")
    std_ddof: int = option(1, "std degrees of freedom: 1 as OpenRLHF group_norm, 0 population", choices=(0, 1))
    pool: str = option("turn", "GN per turn index (default) or over all turns of a group; see docs/method.md for "
                               "the study behind the default", choices=("group", "turn"))
    # "zero": every turn's own reward counts; "one": the paper's sum read 1-based
    turn_indexing: str = option("zero", "read Eq. 2 with turns counted from 0 (default) or 1", choices=("zero", "one"))

    def __post_init__(self):
        problems = option_problems(self)
        if problems:
            raise ValueError("; ".join(problems))


# ---------------------------------------------------------------- fields


def option_fields(cls) -> List[dataclasses.Field]:
    """The fields of an options dataclass declared with :func:`option` (other fields are not options)."""
    return [f for f in fields(cls) if f.metadata.get("option")]


def shared_option_names() -> Tuple[str, ...]:
    """The names of the shared options (:class:`EstimatorOptions`' fields), in declaration order."""
    return tuple(f.name for f in option_fields(EstimatorOptions))


def own_option_fields(cls) -> List[dataclasses.Field]:
    """The options ``cls`` adds to the shared ones (those of the estimator's own namespace)."""
    shared = set(shared_option_names())
    return [f for f in option_fields(cls) if f.name not in shared]


def option_type(cls, name: str) -> type:
    """The plain type of an option (``Optional[int]`` -> ``int``)."""
    hint = typing.get_type_hints(cls)[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def flag_name(f: dataclasses.Field) -> str:
    """The name of the field's flag inside its namespace (``no_std_norm`` for ``std_norm``)."""
    return f.metadata.get("flag") or f.name


def _type_problem(t: type, value: Any) -> Optional[str]:
    if t is bool:
        return None if isinstance(value, bool) else "true or false"
    if t is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if t is float:
        return None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    if t is str:
        return None if isinstance(value, str) else "a string"
    return None


def field_problem(cls, f: dataclasses.Field, value: Any) -> Optional[str]:
    """What is wrong with ``value`` for option ``f`` of ``cls``, completing "must be ..." (None: nothing)."""
    if value is None and f.default is None:
        return None
    want = _type_problem(option_type(cls, f.name), value)
    if want:
        return f"must be {want} (got {value!r})"
    choices = f.metadata.get("choices")
    if choices and value not in choices:
        return f"must be one of {', '.join(repr(c) for c in choices)} (got {value!r})"
    check = f.metadata.get("check")
    if check is not None and not check[0](value):
        return f"must be {check[1]} (got {value!r})"
    return None


def option_problems(obj: Any, cls=None, label: Optional[Callable[[dataclasses.Field], str]] = None) -> List[str]:
    """Every problem of the option values of ``obj`` (an options instance, or a mapping of field name to value
    with ``cls``), each as "<label> must be ...".  ``label(field)`` names the option (default: its name;
    :func:`flag_label` names its flag)."""
    cls = cls or type(obj)
    get = obj.get if isinstance(obj, Mapping) else (lambda name, default=None: getattr(obj, name, default))
    out = []
    for f in option_fields(cls):
        value = get(f.name, f.default)
        problem = field_problem(cls, f, value)
        if problem:
            out.append(f"{label(f) if label else f.name} {problem}")
    return out


# ---------------------------------------------------------------- flags


def namespace_of(f: dataclasses.Field, estimator: Optional[str]) -> str:
    """The flag namespace of an option: ``gtpo`` for a shared one, the estimator's name for its own."""
    return SHARED_NAMESPACE if f.name in shared_option_names() or estimator is None else estimator


def flag_label(estimator: Optional[str] = None) -> Callable[[dataclasses.Field], str]:
    """``label`` for :func:`option_problems`: the option's flag, ``--gtpo.gamma`` / ``--<estimator>.<field>``."""
    def label(f: dataclasses.Field) -> str:
        return f"--{namespace_of(f, estimator)}.{flag_name(f)}"

    return label


def flag_specs(cls=EstimatorOptions, estimator: Optional[str] = None) -> List[Tuple[str, Tuple[str, ...], Dict]]:
    """(hierarchical flag, flat aliases, argparse kwargs) of options: with ``estimator`` None the shared ones
    (``--gtpo.<field>``), else the options ``cls`` adds for that estimator (``--<estimator>.<field>``)."""
    chosen = option_fields(cls) if estimator is None else own_option_fields(cls)
    out = []
    for f in chosen:
        ns, name = namespace_of(f, estimator), flag_name(f)
        t = option_type(cls, f.name)
        kw: Dict[str, Any] = {"help": f.metadata["help"]}
        if t is bool:  # a switch: sets a False default, or (``no_<field>``) turns a True one off
            kw.update(action="store_true", default=False)
        else:
            kw.update(type=t, default=f.default)
            if f.metadata.get("choices"):
                kw["choices"] = list(f.metadata["choices"])
        out.append((f"--{ns}.{name}", (f"--{ns}_{name}",), kw))
    return out


def values_from_namespaces(cls, shared: Any, own: Any = None) -> Dict[str, Any]:
    """Option values of ``cls`` by field name, from the parsed flags: ``shared`` the ``gtpo`` namespace (or None),
    ``own`` the estimator's namespace (or None).  A value the namespaces lack is the field's default."""
    out: Dict[str, Any] = {}
    shared_names = set(shared_option_names())
    for f in option_fields(cls):
        ns = shared if f.name in shared_names else own
        name = flag_name(f)
        if ns is None or not hasattr(ns, name):
            out[f.name] = f.default
            continue
        value = getattr(ns, name)
        out[f.name] = (not value) if f.metadata.get("flag") else value
    return out


def build_options(cls, values: Mapping[str, Any], estimator: str = "the estimator"):
    """``cls(**values)``; a name that is not an option of ``cls`` is a ValueError that lists its options."""
    known = {f.name for f in option_fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{estimator} has no option {', '.join(map(repr, unknown))}; its options: "
                         f"{', '.join(sorted(known))}")
    return cls(**dict(values))


def options_record(opts: Any) -> Dict[str, Any]:
    """The options as the logs record them: every option by field name (``std_norm``, not ``no_std_norm``)."""
    return {f.name: getattr(opts, f.name) for f in option_fields(type(opts))}


def parse_option_value(cls, name: str, text: str) -> Any:
    """An option's value from text (``mtgrpo irc --estimator-option NAME=VALUE``)."""
    t = option_type(cls, name)
    if t is bool:
        low = text.strip().lower()
        if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            raise ValueError(f"{name} must be true or false (got {text!r})")
        return low in ("1", "true", "yes", "on")
    if t in (int, float):
        try:
            return t(text)
        except ValueError:
            raise ValueError(f"{name} must be {'an integer' if t is int else 'a number'} (got {text!r})") from None
    return text


def check_options_class(estimator: str, cls) -> None:
    """ValueError/TypeError unless ``cls`` can be estimator ``estimator``'s options (docs/plugin.md)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls) and issubclass(cls, EstimatorOptions)):
        raise TypeError(f"options of advantage estimator {estimator!r} must be a dataclass that subclasses "
                        f"openrlhf_mtgrpo.advantages.options.EstimatorOptions, got {cls!r}")
    if estimator in RESERVED_NAMESPACES or not estimator.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"advantage estimator {estimator!r} cannot declare options: its flags would be "
                         f"--{estimator}.<option>, and {estimator!r} is "
                         + ("a namespace of OpenRLHF or of the plugin" if estimator in RESERVED_NAMESPACES
                            else "not a plain name (letters, digits, '_' and '-' only)")
                         + "; register it under another name")
    base = {f.name: f for f in fields(EstimatorOptions)}
    for f in fields(cls):
        if f.name in base:
            if f.default is not base[f.name].default and f.default != base[f.name].default:
                raise ValueError(f"options of {estimator!r}: {f.name} is a shared option (--gtpo.{f.name}, default "
                                 f"{base[f.name].default!r}); an estimator cannot change its default")
            continue
        if not f.metadata.get("option"):
            raise ValueError(f"options of {estimator!r}: field {f.name!r} must be declared with "
                             "openrlhf_mtgrpo.advantages.options.option(default, help, ...)")
        if f.default is MISSING:
            raise ValueError(f"options of {estimator!r}: option {f.name!r} needs a default")
        if option_type(cls, f.name) not in (bool, int, float, str):
            raise ValueError(f"options of {estimator!r}: option {f.name!r} must be a bool, int, float or str "
                             "(a flag's value)")
        if option_type(cls, f.name) is bool and f.default and f.metadata.get("flag") != f"no_{f.name}":
            raise ValueError(f"options of {estimator!r}: bool option {f.name!r} defaults to True: declare it with "
                             f"flag='no_{f.name}' (a flag that turns it off)")
    problems = option_problems(cls())
    if problems:
        raise ValueError(f"options of {estimator!r}: the defaults fail their own checks: {'; '.join(problems)}")
