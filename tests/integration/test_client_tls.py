"""TLS: the client verifies BackQuant's certificate with one context per process."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backquant.client import BackQuantClient
from backquant.config import ApiKey, ClientConfig
from backquant.errors import FetchConnectionError
from tests.support.fixtures import TEST_KEY
from tests.support.simulator import FAST_RETRY


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@contextmanager
def _https_server(directory: Path) -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no trusted authority signed."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*_self_signed(directory))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_is_refused_by_every_client(tmp_path: Path) -> None:
    async def fetch(base_url: str) -> None:
        config = ClientConfig(base_url=base_url, api_key=ApiKey(TEST_KEY), retry=FAST_RETRY)
        async with BackQuantClient(config) as client:
            await client.fetch_expiry_summary("BTCUSDT")

    with _https_server(tmp_path) as base_url:
        # Twice: the second client reuses the process's TLS context, which still verifies.
        for _ in range(2):
            with pytest.raises(FetchConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                asyncio.run(fetch(base_url))
