from tests.support.fixtures import scripted_api
from tests.support.services import postgres_server, s3_server

__all__ = ["postgres_server", "s3_server", "scripted_api"]
