"""The wheel's tests (run by scripts/test-python.sh in a fresh venv holding only the wheel and
pytest): the reference agent, started from the installed voicesim command, for the session."""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Iterator

import pytest

from voicesim import find_binary

pytest_plugins = ["pytester"]

HERE = Path(__file__).parent

# pytester gives each inner run a HOME of its own: the models stay where `voicesim setup` put
# them.
os.environ.setdefault(
    "VOICESIM_CACHE",
    str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "voicesim"),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}) before it listened on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"{what} did not listen on {port} within 60 s")
            time.sleep(0.1)


@pytest.fixture(scope="session")
def reference_agent() -> Iterator[str]:
    """`voicesim agent`, the built-in order-status line, as a separate process: its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [os.fspath(find_binary()), "agent", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL,
    )
    wait_for(port, proc, "voicesim agent")
    yield f"ws://127.0.0.1:{port}/"
    proc.terminate()
    proc.wait(10)


#: Two tests of the reference agent's order line: one it passes (clean and in a cafe), one it
#: fails (it says Friday, the test wants Monday). One step each, so a call is about 10 s.
SUITE = textwrap.dedent(
    """\
    name: py-orders
    agent: { protocol: twilio }
    stop: { max_turns: 4, max_seconds: 40, answer_timeout_seconds: 8 }
    tests:
      - name: order-status
        tags: [P0]
        noise: [ { profile: clean }, { profile: cafe, snr: 20 } ]
        steps:
          - goal: Ask when order 4521 arrives
            static_utterance: Hi, my order number is four five two one.
            check: { contains: friday }
            max_turns: 2
      - name: wrong-day
        tags: [P1]
        steps:
          - goal: Ask when order 4521 arrives, expecting Monday
            static_utterance: Hi, my order number is four five two one.
            check: { contains: monday }
            max_turns: 1
    """
)


@pytest.fixture
def suite_project(pytester: pytest.Pytester, reference_agent: str) -> pytest.Pytester:
    """A project with the suite and `[tool.voicesim]` pointing at the reference agent."""
    pytester.makefile(".voicesim.yaml", orders=SUITE)
    pytester.makefile(
        ".toml",
        pyproject=f'[tool.voicesim]\nagent = "{reference_agent}"\nparallel = 4\nout = "calls"\n',
    )
    return pytester
