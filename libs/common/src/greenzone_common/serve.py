"""Several uvicorn workers on one port, each with a listening socket of its own (``SO_REUSEPORT``).

    python -m greenzone_common.serve change_svc.main:create_app --factory --port 8000 --workers 2

``uvicorn --workers N`` binds one socket in the supervisor and shares it: every worker waits on it, and whichever
wakes first takes the connection. Under load that is the busiest one, so long-lived (keep-alive) connections pile up
on one worker while the other idles: 32 benchmark connections were seen split 31/1, 28/4 and 10/22 in three starts,
and the gate's throughput followed (935, 1,080 and 1,449 decisions/s). Here each worker binds its own socket with
``SO_REUSEPORT`` and the kernel spreads new connections over them by their addresses' hash.

A worker that dies is started again; SIGTERM or SIGINT stops them all gracefully (uvicorn's own shutdown in each).
One worker (the default) is what a container runs; this is for more than one on a host (Linux, or any kernel with
``SO_REUSEPORT``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import signal
import socket
import sys
import time
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import structlog

log = structlog.get_logger("greenzone.serve")
RESTART_BACKOFF_SECONDS = 2.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) beside the other workers' (SO_REUSEPORT); uvicorn listens on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(app: str, host: str, port: int, options: dict[str, Any]) -> None:
    import uvicorn

    app_dir = options.pop("app_dir", "")
    if app_dir and app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    sock = listening_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m greenzone_common.serve", description=__doc__.splitlines()[0])
    parser.add_argument("app", help="module:attribute, e.g. change_svc.main:create_app")
    parser.add_argument("--factory", action="store_true", help="the attribute is a factory returning the app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app-dir", default="", help="put this directory on sys.path first")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--no-access-log", action="store_true")
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=30)
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    if args.app_dir:
        sys.path.insert(0, args.app_dir)
    options: dict[str, Any] = {
        "factory": args.factory,
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
        "lifespan": "on",
        "server_header": False,
        "timeout_graceful_shutdown": args.timeout_graceful_shutdown,
        "app_dir": args.app_dir,
    }
    if args.workers == 1:
        _worker(args.app, args.host, args.port, options)
        return 0
    return Supervisor(args.app, args.host, args.port, args.workers, options).run()


class Supervisor:
    """Starts the workers, starts again any that dies, and stops them all on SIGTERM/SIGINT."""

    def __init__(self, app: str, host: str, port: int, workers: int, options: dict[str, Any]) -> None:
        self.target = (app, host, port, options)
        self.context = multiprocessing.get_context("spawn")
        self.workers: list[BaseProcess] = []
        self.count = workers
        self.stopping = False

    def _start(self) -> BaseProcess:
        process = self.context.Process(target=_worker, args=self.target, daemon=False)
        process.start()
        return process

    def _stop(self, signum: int, _frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        self.workers = [self._start() for _ in range(self.count)]
        started = [time.monotonic()] * self.count
        while not self.stopping:
            time.sleep(0.2)
            for i, process in enumerate(self.workers):
                if not process.is_alive() and not self.stopping:
                    log.warning("serve.worker_exited", pid=process.pid, exitcode=process.exitcode)
                    if time.monotonic() - started[i] < RESTART_BACKOFF_SECONDS:
                        time.sleep(RESTART_BACKOFF_SECONDS)  # one that cannot start is not restarted in a tight loop
                    self.workers[i] = self._start()
                    started[i] = time.monotonic()
        for process in self.workers:
            if process.is_alive() and process.pid is not None:
                process.terminate()
        deadline = time.monotonic() + float(self.target[3]["timeout_graceful_shutdown"]) + 5
        for process in self.workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        return 0


if __name__ == "__main__":
    sys.exit(main())
