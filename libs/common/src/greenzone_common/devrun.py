"""``make run``: the whole platform on one machine, stopped cleanly on Ctrl-C or SIGTERM (no orphans)."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
import subprocess
import time
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console
from rich.table import Table

from greenzone_common import topology
from greenzone_common.devstack import EmbeddedPostgres, Tansu, free_port, start_service, stop_process
from greenzone_common.migrations import migrate
from greenzone_common.settings import CommonSettings

console = Console()
DEV_DATABASE = "greenzone"
DEFAULT_BROKER_PORT = 9092


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class DevStack:
    def __init__(self, state_dir: Path, port_offset: int = 0) -> None:
        self.state_dir = state_dir.resolve()
        self.port_offset = port_offset
        self.postgres: EmbeddedPostgres | None = None
        self.broker: Tansu | None = None
        self.services: dict[str, subprocess.Popen[bytes]] = {}
        self.database_url = os.environ.get("GREENZONE_DATABASE_URL", "")
        self.kafka_bootstrap = os.environ.get("GREENZONE_KAFKA_BOOTSTRAP", "")

    def start_infrastructure(self) -> None:
        self.start_postgres()
        self.start_broker()

    def start_postgres(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.database_url:
            port = 5433 if _port_free(5433) else free_port()
            self.postgres = EmbeddedPostgres(self.state_dir / "pgdata", port=port).start()
            self.database_url = self.postgres.create_database(DEV_DATABASE)
            console.print(f"PostgreSQL (embedded) on 127.0.0.1:{port}, data in {self.postgres.data_dir}")

    def start_broker(self) -> None:
        if not self.kafka_bootstrap:
            port = DEFAULT_BROKER_PORT if _port_free(DEFAULT_BROKER_PORT) else free_port()
            self.broker = Tansu(port=port, log_path=self.state_dir / "logs" / "tansu.log").start()
            self.kafka_bootstrap = self.broker.bootstrap
            console.print(f"Tansu broker (memory, keeps nothing across restarts) on {self.kafka_bootstrap}")

    def settings(self) -> CommonSettings:
        return CommonSettings(database_url=self.database_url, kafka_bootstrap=self.kafka_bootstrap)

    def migrate(self) -> None:
        settings = self.settings()

        async def all_services() -> None:
            for info in topology.SERVICES.values():
                spec = importlib.import_module(info.module).SPEC
                await migrate(settings, spec.migrations, spec.schema)

        asyncio.run(all_services())
        console.print("Migrations applied: " + ", ".join(i.schema for i in topology.SERVICES.values()))

    def start_services(self) -> None:
        for name in topology.SERVICES:
            self.start_service(name)

    def start_service(self, name: str) -> None:
        """One service, as ``start_services`` starts each (also to restart one that was stopped)."""
        info = topology.service(name)
        env = {
            **os.environ,
            "GREENZONE_DATABASE_URL": self.database_url,
            "GREENZONE_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "GREENZONE_MIGRATE_ON_START": "false",
            "GREENZONE_SERVICE_NAME": info.name,
        }
        log = self.state_dir / "logs" / f"{info.name}.log"
        self.services[info.name] = start_service(info.module, self.port(info), env, log)

    def stop_service(self, name: str, sig: int = signal.SIGTERM) -> None:
        stop_process(self.services.pop(name), sig)

    def port(self, info: topology.ServiceInfo) -> int:
        return info.port + self.port_offset

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = dict(topology.SERVICES)
        with httpx.Client(timeout=1.0) as client:
            while pending and time.monotonic() < deadline:
                for name, info in list(pending.items()):
                    proc = self.services[name]
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited ({proc.returncode}); see {self.state_dir}/logs/{name}.log")
                    try:
                        if client.get(f"http://127.0.0.1:{self.port(info)}/readyz").status_code == 200:
                            del pending[name]
                    except httpx.HTTPError:
                        pass
                time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")

    def stop(self) -> None:
        for proc in self.services.values():
            stop_process(proc)
        self.services.clear()
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


def _print_urls(stack: DevStack) -> None:
    table = Table(title="Greenzone is ready")
    table.add_column("service")
    table.add_column("URL")
    table.add_column("API docs")
    for info in topology.SERVICES.values():
        base = f"http://127.0.0.1:{stack.port(info)}"
        table.add_row(info.name, base, f"{base}/docs")
    console.print(table)
    console.print("A token: .venv/bin/greenzone token --sub alice --role requester   ·   Ctrl-C stops everything")


def run(state_dir: Path, port_offset: int = 0) -> int:
    stack = DevStack(state_dir, port_offset)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        stack.start_infrastructure()
        stack.migrate()
        stack.start_services()
        stack.wait_ready()
        console.print(f"Ready in {time.monotonic() - started:.1f}s")
        _print_urls(stack)
        parent = os.getppid()
        while True:
            if os.getppid() != parent:  # whoever started us (make, a terminal) is gone: leave no orphans
                return 0
            for name, proc in stack.services.items():
                if proc.poll() is not None:
                    console.print(f"[red]{name} exited ({proc.returncode}); stopping[/red]")
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        console.print("Stopping…")
        return 0
    except Exception as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stack.stop()
        console.print("Stopped.")


def migrate_only(state_dir: Path) -> int:
    stack = DevStack(state_dir)
    try:
        stack.start_postgres()
        stack.migrate()
        return 0
    finally:
        stack.stop()
