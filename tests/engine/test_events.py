"""The dataclasses whose `__init__` is written out (for speed once compiled) must
take the same arguments as the generated one would: every field, in field order,
by position or keyword, with the field's default."""

from __future__ import annotations

import dataclasses

import pytest

from engine.events import FlowKey, Match
from engine.match.matcher import Alert, _Transaction, _TxView
from engine.match.payload import Scratch

_KEY = FlowKey("10.0.0.1", 1234, "10.0.0.2", 80, 6, "1:abc")
_MATCH_VALUES = (1.5, _KEY, 7, "t", "high", 3, 2, "trojan", 1, ("T1",), ("TA1",), ("u,x",))
_MATCH_VALUES += ("http", 9, "drop", "rs", "snort")
_MATCH = Match(*_MATCH_VALUES)
_TX = _Transaction(3, {"http.uri": b"/"}, {1})

#: Per class, a value for every field, in field order, none of them its default (the
#: compiled `__init__`s check argument types, so these are of the fields' types).
WRITTEN_OUT: dict[type, tuple[object, ...]] = {
    FlowKey: ("10.0.0.1", 1234, "10.0.0.2", 80, 6, "1:abc"),
    Match: _MATCH_VALUES,
    Alert: (
        _MATCH,
        "10.0.0.2",
        80,
        "10.0.0.1",
        1234,
        6,
        False,
        113,
        5,
        b"pkt",
        4,
        {"http.uri": b"/"},
        ((), None),
    ),
    _Transaction: (3, {"http.uri": b"/"}, {1}),
    _TxView: ("tls", {"tls.sni": b"x"}, _TX, b"stream", 6, ("tls", None)),
    Scratch: ({"v": 1}, b"x", 5),
}


def _default(f: dataclasses.Field) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_every_field_set_by_position_and_by_keyword(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = WRITTEN_OUT[cls]
    assert len(values) == len(fields)
    for f, v in zip(fields, values, strict=True):
        assert v != _default(f), f"{cls.__name__}.{f.name}: pick a value other than its default"
    for obj in (cls(*values), cls(**{f.name: v for f, v in zip(fields, values, strict=True)})):
        for f, v in zip(fields, values, strict=True):
            assert getattr(obj, f.name) == v, f"{cls.__name__}.{f.name}"


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda c: c.__name__)
def test_defaults_are_the_fields_defaults(cls: type) -> None:
    fields = dataclasses.fields(cls)
    values = WRITTEN_OUT[cls]
    required = [
        v for f, v in zip(fields, values, strict=True) if _default(f) is dataclasses.MISSING
    ]
    obj = cls(*required)
    for f in fields[len(required) :]:
        assert getattr(obj, f.name) == _default(f), f"{cls.__name__}.{f.name}"
    # one argument too many is an error, as with a generated __init__
    with pytest.raises(TypeError):
        cls(*values, values[-1])


def test_a_default_made_per_object_is_not_shared() -> None:
    a, b = _Transaction(), _Transaction()
    a.buffers["x"] = b"1"
    a.fired.add(1)
    assert b.buffers == {} and b.fired == set()
    s, t = Scratch(), Scratch()
    s.variables["v"] = 1
    assert t.variables == {}


def test_frozen_ones_stay_frozen_and_comparable() -> None:
    key = FlowKey("10.0.0.1", 1, "10.0.0.2", 2, 6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.src_port = 3  # type: ignore[misc]
    assert key == FlowKey("10.0.0.1", 1, "10.0.0.2", 2, 6, "")
    assert hash(key) == hash(FlowKey("10.0.0.1", 1, "10.0.0.2", 2, 6, ""))
    match = Match(1.0, key, 5, "t")
    assert dataclasses.replace(match, rule_id=6).rule_id == 6
