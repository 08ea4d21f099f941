"""A local BackQuant v2 server backed by a synthetic options market.

``create_app(SimulatorConfig(...))`` is the Starlette app; ``Market(seed).expiry_summary(symbol,
at)`` gives a body without HTTP; ``runner.serve_in_thread`` runs an app on a loopback port.
"""

from backquant.simulator.app import create_app
from backquant.simulator.config import SimulatorConfig
from backquant.simulator.market import Market

__all__ = ["Market", "SimulatorConfig", "create_app"]
