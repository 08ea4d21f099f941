from tests.support.fixtures import no_workers_left, scripted_api

__all__ = ["no_workers_left", "scripted_api"]
