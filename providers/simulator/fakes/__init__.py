"""The fakes of the providers' wire protocols, one module each, served by `SimulatorServer`.

Each module holds one `providers.simulator.server.Fake` subclass that registers its routes at
the paths the provider's doc gives, so one simulator URL serves them all (the paths do not
collide). Its docstring says what it accepts and answers and every choice made where the doc is
silent. `FAKES` maps each provider slug to its fake; a `SimulatorServer` serves all of them.
"""

from ..server import Fake
from .expertflow import ExpertflowFake
from .ogangi import OgangiFake
from .primotexto import PrimotextoFake
from .simulator import SimulatorFake
from .smsadvert import SmsAdvertFake
from .vortext import VortextFake

FAKES: dict[str, type[Fake]] = {
    fake.slug: fake
    for fake in (
        SimulatorFake,
        VortextFake,
        PrimotextoFake,
        SmsAdvertFake,
        ExpertflowFake,
        OgangiFake,
    )
}

__all__ = ["FAKES"]
