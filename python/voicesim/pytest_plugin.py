"""voicesim as pytest items: every call of a suite (test × noise condition × run) is one item.

    pytest examples/orders.yaml --voicesim-agent ws://127.0.0.1:8765/ -k "order-status and cafe"

A YAML file is a suite to pytest when it is named on the command line or matches the
`suites` patterns of `[tool.voicesim]` in pyproject.toml (default `voicesim*.yaml` and
`*.voicesim.yaml`). The selected calls of a suite run together in one voicesim process, in
parallel; each item reports as its call ends, failing with the judge's reasons, the transcript
and where the recording and report are.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

import pytest

import voicesim
from voicesim._binary import BinaryNotFound, find_binary
from voicesim.results import CallResult, ResultsTail

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = None

DEFAULT_SUITES = ["voicesim*.yaml", "voicesim*.yml", "*.voicesim.yaml", "*.voicesim.yml"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("voicesim", "voicesim: simulated phone calls to a voice agent")
    group.addoption("--voicesim-agent", metavar="URL", help="the agent's websocket URL [default: [tool.voicesim] agent, else the suite's agent.url]")
    group.addoption("--voicesim-agent-command", metavar="CMD", help="start the agent with this command first and wait for the agent URL's port; stopped after the session")
    group.addoption("--voicesim-parallel", metavar="N", help="calls at the same time [default: [tool.voicesim] parallel, else voicesim's]")
    group.addoption("--voicesim-runs", metavar="N", type=int, help="runs of every test per condition (pass^k)")
    group.addoption("--voicesim-noise", metavar="PROFILE[@SNR]", action="append", help="replace the suites' noise conditions (repeat for more)")
    group.addoption("--voicesim-out", metavar="DIR", help="where each suite's run folder goes [default: [tool.voicesim] out, else voicesim-results]")


def _pyproject(config: pytest.Config) -> Dict[str, Any]:
    ini = config.inipath
    path = Path(str(ini)) if ini and ini.name == "pyproject.toml" else Path(str(config.rootpath)) / "pyproject.toml"
    if tomllib is None or not path.exists():
        return {}
    try:
        with path.open("rb") as f:
            return dict(tomllib.load(f).get("tool", {}).get("voicesim", {}))
    except (OSError, ValueError) as e:
        raise pytest.UsageError(f"{path}: [tool.voicesim] cannot be read: {e}")


class Settings:
    """The command line over `[tool.voicesim]` over voicesim's own defaults."""

    def __init__(self, config: pytest.Config):
        table = _pyproject(config)
        opt = config.getoption
        self.agent: Optional[str] = opt("voicesim_agent") or table.get("agent")
        self.agent_command: Optional[str] = opt("voicesim_agent_command") or table.get("agent_command")
        parallel = opt("voicesim_parallel") or table.get("parallel")
        self.parallel: Optional[str] = str(parallel) if parallel is not None else None
        self.runs: Optional[int] = opt("voicesim_runs") or table.get("runs")
        self.noise: List[str] = opt("voicesim_noise") or list(table.get("noise", []))
        # Relative to where the settings are: the project's folder.
        self.root = Path(str(config.rootpath))
        self.out = self.root / (opt("voicesim_out") or table.get("out") or "voicesim-results")
        self.suites: List[str] = list(table.get("suites", DEFAULT_SUITES))
        self.args: List[str] = list(table.get("args", []))


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist: a suite's calls are made together, so its items go to one worker. `-n N`
    # alone means `--dist load`, which is `loadgroup` for items without a group; a worker
    # learns the mode from the command line only, so it is told here too (it then names each
    # item by its group, which is how the controller keeps a group together).
    if hasattr(config, "workerinput"):
        config.option.loadgroup = True
    elif getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"
    config.stash[_settings] = Settings(config)
    config.stash[_runs] = {}
    config.addinivalue_line("markers", "voicesim: a call voicesim makes")
    config.addinivalue_line("markers", "xdist_group(name): pytest-xdist's --dist loadgroup")


_settings = pytest.StashKey[Settings]()
_runs = pytest.StashKey[Dict[Path, "SuiteRun"]]()
_agent = pytest.StashKey["Agent"]()


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional["SuiteFile"]:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    config = parent.config
    named = any(
        Path(str(a).split("::")[0]).resolve() == file_path.resolve() for a in config.args
    )
    patterns = config.stash[_settings].suites
    if named or any(fnmatch.fnmatch(file_path.name, p) for p in patterns):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class VoicesimUsageError(Exception):
    """Something the user can fix: shown as its message, without a traceback."""


class SuiteFile(pytest.File):
    def collect(self) -> Iterator["CallItem"]:
        settings = self.config.stash[_settings]
        try:
            planned = voicesim.plan(self.path, noise=settings.noise, runs=settings.runs)
        except BinaryNotFound as e:
            raise self.CollectError(f"voicesim: {e}")
        except voicesim.VoicesimError as e:
            raise self.CollectError(f"voicesim cannot use the suite {self.path}:\n{e}")
        for call in planned:
            yield CallItem.from_parent(
                self, name=f"{call.test}[{call.condition.label}-run{call.run}]", call=call
            )


class CallItem(pytest.Item):
    def __init__(self, *, call: "voicesim.PlannedCall", **kwargs: Any):
        super().__init__(**kwargs)
        self.call = call
        self.add_marker(pytest.mark.voicesim)
        # With pytest-xdist (`--dist loadgroup`) a suite's calls go to one worker, together.
        self.add_marker(pytest.mark.xdist_group(str(self.path)))
        for tag in call.tags:
            self.keywords[tag] = True
        self.result: Optional[CallResult] = None

    def runtest(self) -> None:
        runs = self.config.stash[_runs]
        suite = Path(str(self.path))
        run = runs.get(suite) or SuiteRun(self.config, suite, [
            i for i in self.session.items if isinstance(i, CallItem) and Path(str(i.path)) == suite
        ])
        runs[suite] = run
        self.result = run.wait(self.call.id)
        if self.result.recording:
            self.user_properties.append(("recording", str(self.result.recording)))
        self.user_properties.append(("report", str(run.out / "report.html")))
        if not self.result.passed:
            raise CallFailed(self.result, run.out)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (CallFailed, VoicesimUsageError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> Tuple[Any, Optional[int], str]:
        return self.path, None, f"voicesim call {self.call.id}"


class CallFailed(Exception):
    def __init__(self, result: CallResult, out: Path):
        lines = [f"{result.id}: {result.outcome.replace('_', ' ')}"]
        lines += [f"  {r}" for r in result.reasons()] or ["  (no step or expectation failed; see the report)"]
        if result.transcript:
            lines.append("transcript:")
            lines += [f"  {t.at_ms / 1000:6.1f} s  {t.speaker:>6}: {t.text}" for t in result.transcript]
        if result.recording:
            lines.append(f"recording: {result.recording}")
        lines.append(f"report: {out / 'report.html'}")
        super().__init__("\n".join(lines))


class SuiteRun:
    """One voicesim process making the selected calls of one suite; results as calls end."""

    def __init__(self, config: pytest.Config, suite: Path, items: List[CallItem]):
        settings = config.stash[_settings]
        self.out = settings.out / suite.stem.replace(".voicesim", "")
        self.results: Dict[str, CallResult] = {}
        self.tail = ResultsTail(self.out / "results.jsonl", self.out)
        self.expected = len(items)
        self.done = threading.Event()
        self.exit_code: Optional[int] = None
        self.said: List[str] = []
        if settings.agent_command and _agent not in config.stash:
            config.stash[_agent] = Agent.start(settings)
            config.add_cleanup(config.stash[_agent].stop)
        cmd = [os.fspath(find_binary()), "run", os.fspath(suite), "--out", os.fspath(self.out), "--overwrite"]
        if settings.agent:
            cmd += ["--agent", settings.agent]
        if settings.parallel:
            cmd += ["--parallel", settings.parallel]
        if settings.runs:
            cmd += ["--runs", str(settings.runs)]
        for n in settings.noise:
            cmd += ["--noise", n]
        for pair in sorted({f"{i.call.test}/{i.call.condition.label}" for i in items}):
            cmd += ["--only", pair]
        cmd += settings.args
        # The last session's run goes first: its results must not pass for this one's.
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._drain, daemon=True).start()
        config.add_cleanup(self.stop)

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.said.append(line)
        self.exit_code = self.proc.wait()
        self.done.set()

    def _read(self) -> None:
        for r in self.tail.read():
            self.results[r.id] = r

    def wait(self, call_id: str) -> CallResult:
        while True:
            finished = self.done.is_set()
            self._read()
            if call_id in self.results:
                return self.results[call_id]
            if finished:
                said = "".join(self.said[-15:]).strip()
                raise VoicesimUsageError(
                    f"voicesim ended (exit {self.exit_code}) without a result for {call_id}:\n{said}"
                )
            self.done.wait(0.2)

    def stop(self) -> None:
        # Every call reported: voicesim is writing the report and JUnit file; let it finish.
        # Otherwise the session was cut short (-x, Ctrl-C): the calls still going are stopped.
        if len(self.results) >= self.expected:
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                pass
        _end(self.proc)


def _end(proc: "subprocess.Popen[Any]") -> None:
    """Asks `proc` to stop, then makes it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Agent:
    """The team's own agent, started from a command and ready once its port answers."""

    def __init__(self, proc: "subprocess.Popen[bytes]", url: str):
        self.proc, self.url = proc, url

    @classmethod
    def start(cls, settings: Settings, timeout: float = 60.0) -> "Agent":
        if not settings.agent:
            raise VoicesimUsageError("--voicesim-agent-command needs --voicesim-agent URL: the port to wait for")
        return cls.serve(settings.agent_command or "", settings.agent, timeout, cwd=settings.root)

    @classmethod
    def serve(
        cls, command: str, url: str, timeout: float = 60.0, cwd: Optional[Path] = None
    ) -> "Agent":
        proc = subprocess.Popen(shlex.split(command), cwd=cwd)
        parsed = urlparse(url)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or (443 if parsed.scheme == "wss" else 80)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise VoicesimUsageError(f"the agent command `{command}` exited ({proc.returncode}) before {host}:{port} answered")
            try:
                socket.create_connection((host, port), timeout=1).close()
                return cls(proc, url)
            except OSError:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise VoicesimUsageError(f"the agent command `{command}` did not open {host}:{port} within {timeout:.0f} s")
                time.sleep(0.2)

    def stop(self) -> None:
        _end(self.proc)


@pytest.fixture
def voicesim_agent() -> Iterator[Any]:
    """Starts an agent from a command and waits for its port: `voicesim_agent("python bot.py",
    "ws://127.0.0.1:8765/")` returns once the port answers; the agent stops after the test."""
    started: List[Agent] = []

    def serve(command: str, url: str, timeout: float = 60.0) -> Agent:
        agent = Agent.serve(command, url, timeout)
        started.append(agent)
        return agent

    yield serve
    for agent in started:
        agent.stop()
