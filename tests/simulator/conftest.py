"""Fixtures for the simulator tests come from the shared support module."""

from tests.support.simulator import simulator, simulator_factory

__all__ = ["simulator", "simulator_factory"]
