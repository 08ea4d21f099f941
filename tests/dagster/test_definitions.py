"""The code location loads from workspace.yaml, and refuses to load misconfigured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backquant.errors import ConfigError
from pipelines.settings import Settings, SettingsError, check_client_environment
from tests.support.fixtures import TEST_KEY

ROOT = Path(__file__).resolve().parents[2]
DAGSTER = [sys.executable, "-m", "dagster"]


def validate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BACKQUANT_", "TERMSTORE_"))
    }
    full_env.update(DAGSTER_HOME=str(tmp_path), TERMSTORE_HOME=str(tmp_path / "wh"), **env)
    return subprocess.run(
        [*DAGSTER, "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        env=full_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_definitions_validate_passes_for_workspace_yaml(tmp_path: Path) -> None:
    result = validate(tmp_path, BACKQUANT_API_KEY=TEST_KEY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_missing_key_fails_at_load_time_saying_what_to_set(tmp_path: Path) -> None:
    result = validate(tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "BACKQUANT_API_KEY is not set" in output
    assert "make dev" in output


def test_bad_base_url_fails_at_load_time() -> None:
    with pytest.raises(ConfigError, match="must be an http"):
        check_client_environment({"BACKQUANT_API_KEY": TEST_KEY, "BACKQUANT_BASE_URL": "ftp://x"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TERMSTORE_INGEST_CRON": "every minute"}, "five-field cron"),
        ({"TERMSTORE_HISTORY_START": "yesterday"}, "YYYY-MM-DD"),
        ({"TERMSTORE_KEEP_SUCCESSFUL_RUNS_HOURS": "-3"}, "positive whole number"),
    ],
)
def test_bad_settings_say_what_to_set(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_settings_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.ingest_cron == "* * * * *"
    assert not settings.simulated
