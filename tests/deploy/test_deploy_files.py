"""deploy/ is the single source of truth for the production topology: these tests hold its files
to the Compose Specification, to uv.lock and to each other.

- compose.yaml validates against the vendored Compose Specification schema (before and after
  interpolation), writes no secret, and documents every variable it reads in env.example;
- the long-running services restart alone and have health checks; the one-shot jobs run first;
- the Dockerfile installs Python packages only with ``uv sync --frozen``, from pinned base images,
  and every package, program and driver that deploy/ names is in uv.lock, at its locked version;
- deploy/dagster.yaml is dagster-instance.yaml (what ``make dev`` runs) with its storage in
  PostgreSQL, every connection detail from the environment, and it opens on a real server;
- the Helm values say what compose.yaml and dagster.yaml say, for the chart of the locked Dagster.
"""

from __future__ import annotations

import copy
import importlib
import importlib.metadata
import json
import re
import tomllib
import uuid
from pathlib import Path

import jsonschema
import psycopg
import pytest
import yaml
from packaging.specifiers import SpecifierSet

from storage.lake_config import LakeConfig
from tests.support.compose_loopback import (
    COMPOSE_FILE,
    DEPLOY,
    DOCKERFILE,
    ROOT,
    Image,
    InterpolationError,
    dockerfile_instructions,
    environment,
    interpolate_tree,
    load_compose,
    referenced_variables,
)
from tests.support.services import PostgresServer

SCHEMA = Path(__file__).with_name("compose-spec.json")
ENV_EXAMPLE = DEPLOY / "env.example"
PROD_INSTANCE = DEPLOY / "dagster.yaml"
DEV_INSTANCE = ROOT / "dagster-instance.yaml"
HELM_VALUES = DEPLOY / "helm" / "values.yaml"
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())
PACKAGES = {package["name"]: package for package in LOCK["package"]}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|WEBHOOK")
LONG_RUNNING = {"postgres", "minio", "codeserver", "webserver", "daemon"}
ONE_SHOT = {"minio-bucket", "dagster-migrate"}
INSTALLERS = re.compile(r"\b(pip3?|easy_install|poetry|conda|pipx)\b|\buv\s+(pip|add|tool)\b")


def example_variables() -> dict[str, str]:
    """env.example with every variable set, as an operator's deploy/.env would be."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^#?\s?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2) or f"example-{match.group(1).lower()}"
    return values


def runtime_packages() -> set[str]:
    """Every package ``uv sync --frozen --no-dev`` installs: termstore's dependencies and
    theirs (extras included), from uv.lock."""
    seen: set[tuple[str, str]] = set()
    stack = [
        (dep["name"], extra)
        for dep in PACKAGES["termstore"]["dependencies"]
        for extra in ("", *dep.get("extra", []))
    ]
    while stack:
        name, extra = stack.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        package = PACKAGES[name]
        deps = (
            package.get("optional-dependencies", {}).get(extra, [])
            if extra
            else package.get("dependencies", [])
        )
        for dep in deps:
            stack.extend((dep["name"], e) for e in ("", *dep.get("extra", [])))
    return {name for name, _ in seen}


def deploy_files() -> list[Path]:
    return sorted(path for path in DEPLOY.rglob("*") if path.is_file())


# --- compose.yaml ----------------------------------------------------------------------------


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads(SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    raw = load_compose()
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(raw)]
    assert not errors, errors
    interpolated = interpolate_tree(raw, example_variables())
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(interpolated)]
    assert not errors, errors
    # The schema is strict enough to catch a slip: a misspelled key is refused.
    broken = copy.deepcopy(raw)
    broken["services"]["daemon"]["restarts"] = broken["services"]["daemon"].pop("restart")
    assert not validator.is_valid(broken)


def test_compose_file_holds_no_secret_and_env_example_names_every_variable() -> None:
    raw = load_compose()
    for name, service in raw["services"].items():
        declared = service.get("environment") or {}
        for key, value in declared.items():
            if SECRET_NAME.search(key):
                # A secret is a required variable or passed through, never a value or default.
                assert value is None or re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", str(value)), (
                    f"{name}: {key}={value!r}"
                )
    variables = referenced_variables(raw)
    documented = example_variables()
    passed_through = {
        key
        for service in raw["services"].values()
        for key, value in (service.get("environment") or {}).items()
        if value is None
    }
    assert set(variables) | passed_through == set(documented)
    required = {name for name, is_required in variables.items() if is_required}
    uncommented = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE.read_text().splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    }
    # The required variables are exactly the secrets left for the operator to fill in.
    assert required == uncommented
    assert all(SECRET_NAME.search(name) or name.startswith("S3_ACCESS") for name in required)
    # The catalog string carries no password (PGPASSWORD does, from deploy/.env).
    assert "password=" not in COMPOSE_FILE.read_text().lower()


def test_a_missing_secret_stops_compose_naming_it() -> None:
    variables = example_variables()
    del variables["POSTGRES_PASSWORD"]
    with pytest.raises(InterpolationError, match="POSTGRES_PASSWORD"):
        interpolate_tree(load_compose(), variables)
    variables = {**example_variables(), "BACKQUANT_API_KEY": ""}
    with pytest.raises(InterpolationError, match="BACKQUANT_API_KEY"):
        interpolate_tree(load_compose(), variables)


def test_an_empty_s3_endpoint_means_aws_itself() -> None:
    # env.example and docs/production.md: S3_ENDPOINT_URL set empty is AWS, unset the MinIO
    # service; Compose's ":-" would turn the empty value into the default.
    services = {
        endpoint: interpolate_tree(load_compose(), variables)["services"]["codeserver"]
        for endpoint, variables in (
            ("empty", {**example_variables(), "S3_ENDPOINT_URL": ""}),
            ("unset", {k: v for k, v in example_variables().items() if k != "S3_ENDPOINT_URL"}),
        )
    }
    lakes = {
        endpoint: LakeConfig.from_env(env=environment(service, {}))
        for endpoint, service in services.items()
    }
    assert lakes["empty"].s3 is not None and lakes["empty"].s3.endpoint is None
    assert lakes["unset"].s3 is not None and lakes["unset"].s3.endpoint == "minio:9000"


def test_services_restart_alone_report_their_health_and_start_in_order() -> None:
    services = load_compose()["services"]
    assert set(services) == LONG_RUNNING | ONE_SHOT
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped", name
        assert services[name]["healthcheck"]["test"], name
    for name in ONE_SHOT:
        assert services[name]["restart"] == "on-failure", name
    conditions = {
        (name, dependency): spec["condition"]
        for name, service in services.items()
        for dependency, spec in (service.get("depends_on") or {}).items()
    }
    # Dagster's schema exists before any long-running Dagster service opens it, and the
    # bucket before the code location writes to it.
    for name in ("codeserver", "webserver", "daemon"):
        assert conditions[(name, "dagster-migrate")] == "service_completed_successfully"
    assert conditions[("codeserver", "minio-bucket")] == "service_completed_successfully"
    assert conditions[("dagster-migrate", "postgres")] == "service_healthy"
    # No service waits on the code server: each Dagster service starts and restarts alone.
    assert not [pair for pair in conditions if pair[1] == "codeserver"]
    # The UI has no login: it is published on loopback only, nothing else is published.
    published = {name: service.get("ports", []) for name, service in services.items()}
    assert published.pop("webserver") == ["127.0.0.1:${DAGSTER_WEBSERVER_PORT:-3000}:3000"]
    assert not any(published.values())


# --- the image and the lock -------------------------------------------------------------------


def test_the_image_installs_only_what_uv_lock_pins() -> None:
    instructions = list(dockerfile_instructions(DOCKERFILE))
    runs = [argument for instruction, argument in instructions if instruction == "RUN"]
    syncs = [run for run in runs if "uv sync" in run]
    assert syncs, "the image installs nothing with uv sync"
    assert all("--frozen" in run and "--no-dev" in run for run in syncs), syncs
    # termstore is not built: its build backend is not locked, so building it would fetch an
    # unpinned hatchling. Its code runs from PYTHONPATH.
    assert all("--no-install-project" in run for run in syncs), syncs
    assert not [run for run in runs if INSTALLERS.search(run)], runs
    # The lock and the project are in the image before the first sync.
    first_sync = next(i for i, (ins, arg) in enumerate(instructions) if "uv sync" in arg)
    copied = " ".join(arg for ins, arg in instructions[:first_sync] if ins == "COPY")
    assert "uv.lock" in copied and "pyproject.toml" in copied
    image = Image.parse()
    assert image.env["UV_PYTHON_DOWNLOADS"] == "never"
    assert image.user == "termstore"
    # Base images pinned to a version, never a moving tag.
    for base in image.bases:
        tag = base.partition(":")[2]
        assert re.match(r"\d+\.\d+\.\d+", tag), base
    python = next(base for base in image.bases if base.startswith("python:"))
    version = python.split(":")[1].split("-")[0]
    assert version in SpecifierSet(PROJECT["requires-python"])
    # What the code location reads at run time is in the image.
    copied_sources = {source for source, _ in image.copies}
    assert {"backquant", "storage", "assets", "pipelines", "docs/data-dictionary.md"} <= (
        copied_sources
    )
    assert ("deploy/dagster.yaml", "/opt/dagster/dagster_home/dagster.yaml") in image.copies
    assert image.env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
    assert image.env["PYTHONPATH"] == image.workdir
    code = {source: target for source, target in image.copies if "/" not in source}
    assert all(target == f"{image.workdir}/{source}" for source, target in code.items()), code


def test_every_package_program_and_driver_deploy_names_is_locked() -> None:
    installed = runtime_packages()
    # name==version anywhere in deploy/ (docs, values, comments) is the locked version.
    for path in deploy_files():
        for name, version in re.findall(r"\b([A-Za-z][\w.-]*)==(\d[\w.]*)", path.read_text()):
            locked = PACKAGES.get(name.lower().replace("_", "-"))
            assert locked is not None, f"{path.name} names {name}, which uv.lock does not have"
            assert locked["version"] == version, (path.name, name, version)
    # The services run console scripts of locked runtime packages, at the locked version (the
    # topology test runs this environment's, so it runs what the image runs).
    scripts = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
    services = load_compose()["services"]
    programs = set()
    for service in services.values():
        if service.get("build"):
            programs.add(service["command"][0])
            if "healthcheck" in service:
                programs.add(service["healthcheck"]["test"][1])
    for program in programs - {"python"}:
        dist = scripts[program].dist
        assert dist is not None
        name = dist.metadata["Name"].lower().replace("_", "-")
        assert name in installed | {"termstore"}, program
        assert PACKAGES[name]["version"] == dist.version, (program, dist.version)
    # Every class deploy/ configures by module (instance, Helm values) comes from a locked
    # runtime package and exists.
    owners = importlib.metadata.packages_distributions()
    for path in (PROD_INSTANCE, HELM_VALUES):
        for module, class_name in re.findall(r"module: (\S+)\n\s+class: (\S+)", path.read_text()):
            (owner,) = owners[module.split(".")[0]]
            assert owner.lower().replace("_", "-") in installed, (path.name, module)
            assert hasattr(importlib.import_module(module), class_name), (module, class_name)
    # The storage classes and the database driver deploy/dagster.yaml asks for are installed
    # by the image. It names psycopg2: psycopg 3, which SQLAlchemy would pick for a bare
    # "postgresql", is in the image too (the lake's writer lock uses it).
    storage = yaml.safe_load(PROD_INSTANCE.read_text())["storage"]["postgres"]["postgres_db"]
    assert storage["scheme"] == "postgresql+psycopg2"
    assert {"dagster-postgres", "psycopg2-binary", "sqlalchemy", "psycopg"} <= installed
    assert PACKAGES["dagster-postgres"]["version"] == importlib.metadata.version("dagster-postgres")


# --- the Dagster instance ---------------------------------------------------------------------


def test_the_production_instance_is_the_dev_instance_with_storage_in_postgresql() -> None:
    prod = yaml.safe_load(PROD_INSTANCE.read_text())
    dev = yaml.safe_load(DEV_INSTANCE.read_text())
    storage = prod.pop("storage")
    launcher = prod.pop("run_launcher")
    assert prod == dev
    # The default launcher, which the dev instance gets by leaving it out.
    assert launcher == {"module": "dagster._core.launcher", "class": "DefaultRunLauncher"}
    db = storage["postgres"]["postgres_db"]
    for field_name in ("hostname", "port", "username", "password", "db_name"):
        assert set(db[field_name]) == {"env"}, field_name
    compose_env = environment(load_compose()["services"]["daemon"], example_variables())
    assert {db[f]["env"] for f in ("hostname", "port", "username", "password", "db_name")} <= set(
        compose_env
    )


def test_the_production_instance_opens_on_postgresql(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance, DagsterRun
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )

    name = f"dagster_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server.dsn(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(PROD_INSTANCE.read_text())
    for variable, value in {
        "DAGSTER_PG_HOST": postgres_server.host,
        "DAGSTER_PG_PORT": str(postgres_server.port),
        "DAGSTER_PG_USER": postgres_server.user,
        "DAGSTER_PG_PASSWORD": postgres_server.password,
        "DAGSTER_PG_DB": name,
    }.items():
        monkeypatch.setenv(variable, value)
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.run_storage._engine.dialect.driver == "psycopg2"
        limits = instance.get_concurrency_config().run_queue_config
        assert limits is not None and limits.max_concurrent_runs == 4
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        instance.add_run(DagsterRun(job_name="ingest", run_id="deploy-check"))
    # Nothing of it on the machine: a new instance on the same database sees the run.
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_run_by_id("deploy-check") is not None
    assert sorted(p.name for p in home.iterdir()) == ["dagster.yaml"]


def test_the_workspace_finds_the_code_server_from_the_environment() -> None:
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["location_name"] == "termstore"
    services = load_compose()["services"]
    for name in ("webserver", "daemon"):
        env = environment(services[name], example_variables())
        assert env[server["host"]["env"]] == "codeserver"
        assert env[server["port"]["env"]] == "4000"
    assert "4000" in services["codeserver"]["expose"]
    assert (
        services["codeserver"]["command"][services["codeserver"]["command"].index("--port") + 1]
        == "4000"
    )


# --- Helm -------------------------------------------------------------------------------------


def test_helm_values_say_what_compose_and_the_instance_say() -> None:
    values = yaml.safe_load(HELM_VALUES.read_text())
    text = HELM_VALUES.read_text()
    # The chart is released with Dagster: its version is the locked dagster's.
    versions = set(re.findall(r"--version (\S+)|version (\d+\.\d+\.\d+)", text))
    assert {v for pair in versions for v in pair if v} == {PACKAGES["dagster"]["version"]}
    prod = yaml.safe_load(PROD_INSTANCE.read_text())
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    # The limits only in the chart's `concurrency` block: Dagster refuses an instance that sets
    # them in the run coordinator's config as well.
    assert queued == {
        "dequeueIntervalSeconds": prod["run_coordinator"]["config"]["dequeue_interval_seconds"]
    }
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    runs, pools = prod["concurrency"]["runs"], prod["concurrency"]["pools"]
    assert concurrency["runs"]["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    assert concurrency["pools"] == {
        "defaultLimit": pools["default_limit"],
        "granularity": pools["granularity"],
    }
    for kind in ("schedule", "sensor"):
        purge = dict(values["retention"][kind]["purgeAfterDays"])
        assert purge.pop("started") == -1
        assert purge == prod["retention"][kind]["purge_after_days"]
    assert values["telemetry"] == prod["telemetry"]
    assert values["additionalInstanceConfig"]["nux"] == prod["nux"]
    launcher = values["runLauncher"]["config"]["customRunLauncher"]
    assert {"module": launcher["module"], "class": launcher["class"]} == prod["run_launcher"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    compose = load_compose()["services"]["codeserver"]
    command = compose["command"]
    assert command[:3] == ["dagster", "code-server", "start"]
    # The chart adds `dagster code-server start -h 0.0.0.0 -p <port>`; the rest is ours.
    assert deployment["codeServerArgs"] == command[7:]
    assert str(deployment["port"]) == command[command.index("--port") + 1]
    assert deployment["image"]["tag"] == PROJECT["version"]
    assert load_compose()["x-termstore-image"]["image"].endswith(f":{PROJECT['version']}}}")
    # Secrets come from Kubernetes secrets, never from the values.
    env = deployment["env"]
    assert not [key for key in env if SECRET_NAME.search(key)], env
    assert "password=" not in env["TERMSTORE_CATALOG"]
    assert deployment["envSecrets"] == [{"name": "termstore-secrets"}]
    assert values["generatePostgresqlPasswordSecret"] is False
    assert "postgresqlPassword" not in values["postgresql"]
