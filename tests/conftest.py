from tests.support.fixtures import scripted_api

__all__ = ["scripted_api"]
