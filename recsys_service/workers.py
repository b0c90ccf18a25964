"""Worker processes that each accept on their own listening socket (``SO_REUSEPORT``).

uvicorn's ``--workers`` hands one listening socket to every worker: whichever worker wakes first
accepts every connection waiting, so 16 keep-alive connections opened together can all land on
one worker while the other idles (measured: in half the runs on a busy machine, see
benchmarks/results-serving.md). Here every worker slot gets its own socket bound to the same
address with ``SO_REUSEPORT``, and the kernel spreads new connections over the sockets by a
hash of the connection. A worker that dies is replaced on the socket of its slot, so no
socket is ever left without a process accepting on it.

The supervisor is uvicorn's (signals, health pings, ``SIGHUP`` rolling restart, ``SIGTTIN``
and ``SIGTTOU``), with the places that start a worker giving it the socket of its slot.
"""

from __future__ import annotations

import logging
import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from recsys_core.settings import get_settings
from recsys_service.settings import ServiceSettings

logger = logging.getLogger("uvicorn.error")


def reuse_port_supported() -> bool:
    """``SO_REUSEPORT`` spreads connections over sockets on Linux (3.9 and later); elsewhere
    (macOS, the BSDs) the option exists but the last socket bound takes every connection."""
    import sys

    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def bind_reuse_port(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening socket on ``host:port`` that shares the port with the other workers."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class PerWorkerSockets(Multiprocess):
    """uvicorn's multiprocess supervisor, one listening socket per worker slot."""

    def __init__(self, config: Config) -> None:
        first = bind_reuse_port(config.host, config.port, config.backlog)
        # port 0: the first socket picked a free port; the others join it
        self.port: int = first.getsockname()[1]
        self.slot_sockets = [first]
        super().__init__(config, sockets=[])
        self.slot_sockets += [self._bind() for _ in range(config.workers - 1)]
        logger.info(
            "Uvicorn running on http://%s:%d with %d workers, one socket each "
            "(SO_REUSEPORT) (Press CTRL+C to quit)",
            config.host,
            self.port,
            config.workers,
        )

    def _bind(self) -> socket.socket:
        return bind_reuse_port(self.config.host, self.port, self.config.backlog)

    def _start(self, slot: int) -> Process:
        process = Process(self.config, [self.slot_sockets[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        self.processes = [self._start(slot) for slot in range(self.processes_num)]

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for slot, process in enumerate(self.processes):
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()  # hung: kill it
            process.join()
            if process.exitcode == STARTUP_FAILURE:
                # the app or its settings are broken: every restart would fail the same way
                logger.error(
                    "Child process [%s] failed to start, stopping the parent process.", process.pid
                )
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            logger.info("Child process [%s] died", process.pid)
            self.processes[slot] = self._start(slot)

    def restart_all(self) -> None:
        """Replaces each worker on its own socket, the new one serving before the old stops."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                if not self.should_exit.is_set():
                    logger.error(
                        "New child process [%s] was not ready in time; keeping worker "
                        "[%s] and aborting the restart.",
                        new.pid,
                        old.pid,
                    )
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def handle_ttin(self) -> None:
        logger.info("Received SIGTTIN, increasing the number of processes.")
        self.slot_sockets.append(self._bind())
        self.processes_num += 1
        self.processes.append(self._start(len(self.processes)))

    def handle_ttou(self) -> None:
        logger.info("Received SIGTTOU, decreasing number of processes.")
        if self.processes_num <= 1:
            logger.info(
                "Already reached one process, cannot decrease the number of processes anymore."
            )
            return
        self.processes_num -= 1
        process = self.processes.pop()
        self.slot_sockets.pop().close()  # the worker holds its own copy until it exits
        process.terminate()
        process.join()

    def run(self) -> None:
        try:
            super().run()
        finally:
            for sock in self.slot_sockets:
                sock.close()


def run(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    reuse_port: bool = True,
    log_level: str = "info",
    access_log: bool = False,
    settings: ServiceSettings | None = None,
) -> None:
    """uvicorn serving the ``app`` factory, with the connection limits of ``settings``
    (``recsys_service.limits.uvicorn_options``): one socket per worker where the platform
    spreads connections over them (and ``reuse_port``), uvicorn's own shared socket elsewhere
    or with one worker."""
    from uvicorn import Server

    from recsys_service.limits import uvicorn_options

    settings = settings or get_settings().serving
    config = Config(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=access_log,
        **uvicorn_options(settings),
    )
    # read by the protocol (limits.HeadDeadline); travels with the config to spawned workers
    config.header_timeout_s = settings.header_timeout_s  # type: ignore[attr-defined]
    if workers < 2 or not reuse_port or not reuse_port_supported():
        # what uvicorn.run does with these arguments
        try:
            if workers > 1:
                Multiprocess(config, sockets=[config.bind_socket()]).run()
                return
            server = Server(config)
            server.run()
        except KeyboardInterrupt:
            return
        if not server.started:
            raise SystemExit(STARTUP_FAILURE)
        return
    try:
        supervisor = PerWorkerSockets(config)
    except OSError as exc:
        logger.error("cannot listen on %s:%d: %s", host, port, exc)
        raise SystemExit(STARTUP_FAILURE) from exc
    supervisor.run()
