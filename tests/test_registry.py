import pytest

from segkit.errors import SegkitError
from segkit.registry import Registry


def make_registry() -> Registry:
    reg = Registry("widget")

    @reg.register()
    class Gear:
        def __init__(self, teeth: int, size: float = 1.0) -> None:
            self.teeth, self.size = teeth, size

    @reg.register("spring")
    def make_spring(stiffness: float) -> dict:
        return {"stiffness": stiffness}

    return reg


def test_build_passes_arguments_and_defaults():
    reg = make_registry()
    gear = reg.build({"type": "Gear", "size": 2.0}, teeth=12)
    assert (gear.teeth, gear.size) == (12, 2.0)
    assert reg.build({"type": "spring", "stiffness": 3}) == {"stiffness": 3}
    assert reg.names() == ["Gear", "spring"]


def test_config_value_wins_over_default():
    gear = make_registry().build({"type": "Gear", "teeth": 5}, teeth=12)
    assert gear.teeth == 5


def test_unknown_type_names_registered_and_closest():
    with pytest.raises(SegkitError, match=r"model.type='Gaer' is not a registered widget; did you mean 'Gear'"):
        make_registry().build({"type": "Gaer"}, where="model")


def test_unknown_argument_is_named_with_hint():
    with pytest.raises(SegkitError, match=r"unknown argument 'teath'; did you mean 'teeth'"):
        make_registry().build({"type": "Gear", "teath": 3})


def test_missing_type_and_double_registration():
    reg = make_registry()
    with pytest.raises(SegkitError, match="must be a dict with a 'type' key"):
        reg.build({"teeth": 3})
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("Gear")(lambda: None)
