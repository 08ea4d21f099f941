"""``termstore doctor`` against a scripted BackQuant on loopback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.support.fixtures import TEST_KEY, ScriptedAPI

runner = CliRunner()


def run_doctor() -> tuple[int, str]:
    """Exit code and output with rich's line wrapping folded away."""
    result = runner.invoke(app, ["doctor"])
    return result.exit_code, " ".join(result.output.replace("│", " ").split())


def test_doctor_shows_redacted_config_and_passes(
    scripted_api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("BACKQUANT_BASE_URL", scripted_api.server.base_url)
    exit_code, output = run_doctor()
    assert exit_code == 0, output
    assert scripted_api.server.base_url in output
    assert "bq_test_****" in output
    assert TEST_KEY not in output
    assert "status='ok'" in output


def test_doctor_fails_without_key_but_still_checks_health(
    scripted_api: ScriptedAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BACKQUANT_API_KEY", raising=False)
    monkeypatch.setenv("BACKQUANT_BASE_URL", scripted_api.server.base_url)
    exit_code, output = run_doctor()
    assert exit_code == 1
    assert "BACKQUANT_API_KEY is not set" in output
    assert "status='ok'" in output


def test_doctor_reports_bad_config_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKQUANT_BASE_URL", "ftp://example.invalid")
    exit_code, output = run_doctor()
    assert exit_code == 2
    assert "must be an http(s) URL" in output


def test_doctor_reports_unreachable_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKQUANT_API_KEY", TEST_KEY)
    monkeypatch.setenv("BACKQUANT_BASE_URL", "http://127.0.0.1:9")
    exit_code, output = run_doctor()
    assert exit_code == 1
    assert "could not reach http://127.0.0.1:9" in output
