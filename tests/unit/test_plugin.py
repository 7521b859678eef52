"""The twistd dropin: ``twistd podapi`` finds it and starts without the cyclic collector."""

import gc

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins

from podapi.tap import Options


def test_twistd_finds_podapi_and_its_options_turn_the_collector_off() -> None:
    (maker,) = [p for p in getPlugins(IServiceMaker) if p.tapname == "podapi"]
    assert gc.isenabled()
    try:
        assert maker.options is Options
        assert not gc.isenabled()  # until podapi.service is serving
    finally:
        gc.enable()
