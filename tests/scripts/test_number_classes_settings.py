"""``pool.number_classes`` from the settings reaches every reader of X: pool import (see
test_cli_pool), the call path's dialled number and the CDR listener's fail-path records."""

from __future__ import annotations

from scripts.part_config import listener_config, route_options
from scripts.settings import Settings


def test_the_configured_classes_reach_the_call_path_and_the_cdr_listener() -> None:
    settings = Settings(
        bindings={"default_region": "GB"},
        pool={"number_classes": {"GB": {"segments": [{"prefix": "99", "length": 12}]},
                                 "CN": {"kinds": ["mobile"]}}})
    classes = settings.number_classes
    assert classes.home == "GB"
    assert classes.describe() == "GB: 99 (12 digits); CN: mobile"
    for reader in (route_options(settings).number_classes,
                   listener_config(settings).number_classes):
        assert reader == classes
        assert reader.dialled("991234567890") == "+44991234567890"  # national, home region
        assert reader.dialled("700123456789012") is None  # no 700 segment configured


def test_the_default_is_china_with_the_700_segment() -> None:
    classes = Settings().number_classes
    assert classes.describe() == "CN: mobile, fixed_line, 700 (15 digits)"
    assert route_options(Settings()).number_classes.dialled("700123456789012") == (
        "+86700123456789012")
