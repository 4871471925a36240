"""voicesim from Python: run a suite of simulated phone calls against a voice agent and get
typed results back.

    import voicesim

    results = voicesim.run("examples/orders.yaml", agent="ws://127.0.0.1:8765/", parallel=4)
    for call in results.failed():
        print(call.id, call.reasons(), call.recording)

Each function starts the `voicesim` command this package installed and reads what it wrote
(`results.jsonl`); the command's own documentation is `voicesim --help`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from voicesim._binary import BinaryNotFound, find_binary
from voicesim.results import CallResult, Condition, Judgement, Line, RunResults

__all__ = [
    "BinaryNotFound",
    "CallResult",
    "Condition",
    "Judgement",
    "Line",
    "PlannedCall",
    "RunResults",
    "VoicesimError",
    "diff",
    "find_binary",
    "plan",
    "run",
]

PathLike = Union[str, "os.PathLike[str]"]
Suite = Union[PathLike, Mapping[str, Any]]

#: voicesim's exit codes (`voicesim --help`): 2 bad input, 3 agent or provider unreachable,
#: 4 a bug in voicesim.
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_INTERNAL = 4


class VoicesimError(RuntimeError):
    """voicesim refused or could not do what was asked: `exit_code` and what it said."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class PlannedCall:
    """A call a run would make: test, condition and run number (`voicesim run --list`)."""

    __slots__ = ("test", "condition", "run", "tags")

    def __init__(self, test: str, condition: Condition, run: int, tags: List[str]):
        self.test, self.condition, self.run, self.tags = test, condition, run, tags

    @property
    def id(self) -> str:
        return f"{self.test}/{self.condition.label}/run-{self.run}"

    def __repr__(self) -> str:
        return f"PlannedCall({self.id!r})"


def _suite_path(suite: Suite, keep: List[Any]) -> str:
    """A path to the suite: as given, or a dict written out as a file (JSON is YAML). A dict's
    relative paths resolve from the working directory."""
    if isinstance(suite, Mapping):
        f = tempfile.NamedTemporaryFile(
            "w", suffix=".yaml", prefix=".voicesim-suite-", dir=os.getcwd(), delete=False
        )
        with f:
            json.dump(suite, f)
        keep.append(f.name)
        return f.name
    return os.fspath(suite)


def _selection(
    tags: Optional[Sequence[str]], only: Optional[Sequence[str]], noise: Optional[Iterable[Any]]
) -> List[str]:
    args: List[str] = []
    for tag in tags or []:
        args += ["--tags", tag]
    for sel in only or []:
        args += ["--only", sel]
    for n in noise or []:
        if isinstance(n, Mapping):
            snr = n.get("snr")
            n = n["profile"] if snr is None else f"{n['profile']}@{snr}"
        args += ["--noise", str(n)]
    return args


def _check(proc: "subprocess.CompletedProcess[str]", what: str) -> None:
    if proc.returncode in (EXIT_BAD_INPUT, EXIT_UNREACHABLE, EXIT_INTERNAL):
        said = (proc.stderr or "").strip() or (proc.stdout or "").strip()
        raise VoicesimError(f"{what}: {said}", proc.returncode)


def plan(
    suite: Suite,
    *,
    tags: Optional[Sequence[str]] = None,
    only: Optional[Sequence[str]] = None,
    noise: Optional[Iterable[Any]] = None,
    runs: Optional[int] = None,
) -> List[PlannedCall]:
    """The calls `run` would make with the same arguments, without calling anyone."""
    keep: List[Any] = []
    try:
        cmd = [os.fspath(find_binary()), "run", _suite_path(suite, keep), "--list"]
        cmd += _selection(tags, only, noise)
        if runs is not None:
            cmd += ["--runs", str(runs)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        for name in keep:
            os.unlink(name)
    _check(proc, f"voicesim could not plan {suite if not isinstance(suite, Mapping) else 'the suite'}")
    calls = []
    for line in proc.stdout.splitlines():
        if line.strip():
            c = json.loads(line)
            cond = c["condition"]
            calls.append(
                PlannedCall(c["test"], Condition(cond["profile"], cond.get("snr")), c["run"], c.get("tags", []))
            )
    return calls


def run(
    suite: Suite,
    agent: Optional[str] = None,
    *,
    runs: Optional[int] = None,
    parallel: Union[int, str, None] = None,
    noise: Optional[Iterable[Any]] = None,
    tags: Optional[Sequence[str]] = None,
    only: Optional[Sequence[str]] = None,
    protocol: Optional[str] = None,
    seed: Optional[int] = None,
    out: Optional[PathLike] = None,
    overwrite: bool = True,
    args: Sequence[str] = (),
    progress: Union[bool, IO[str]] = True,
) -> RunResults:
    """Run `suite` (a suite file, or the same as a dict) against `agent` (a websocket URL;
    default the suite's `agent.url`) and return its results.

    `noise` replaces the suite's noise conditions: profile names, `"cafe@10"`, or dicts
    `{"profile": "cafe", "snr": 10}`. `only` keeps just some calls: `"order-status"` or
    `"order-status/cafe@20dB"`. voicesim's own output goes to stderr (or `progress`, a text
    stream; `False` for none) as calls end. A run whose calls failed returns normally (see
    `RunResults.passed`); bad input, an unreachable agent or a voicesim bug raise
    `VoicesimError`.
    """
    keep: List[Any] = []
    out_dir = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="voicesim-run-"))
    try:
        cmd = [os.fspath(find_binary()), "run", _suite_path(suite, keep), "--out", os.fspath(out_dir)]
        if agent:
            cmd += ["--agent", agent]
        if runs is not None:
            cmd += ["--runs", str(runs)]
        if parallel is not None:
            cmd += ["--parallel", str(parallel)]
        if protocol:
            cmd += ["--protocol", protocol]
        if seed is not None:
            cmd += ["--seed", str(seed)]
        if overwrite:
            cmd += ["--overwrite"]
        cmd += _selection(tags, only, noise)
        cmd += list(args)
        sink = sys.stderr if progress is True else progress
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        said: List[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            said.append(line)
            if sink:
                sink.write(line)
                sink.flush()
        code = proc.wait()
    finally:
        for name in keep:
            os.unlink(name)
    results = RunResults.read(out_dir, code)
    if code == EXIT_BAD_INPUT or (code in (EXIT_UNREACHABLE, EXIT_INTERNAL) and not results.calls):
        raise VoicesimError("".join(said[-20:]).strip() or f"voicesim exited {code}", code)
    return results


def diff(base: PathLike, new: PathLike, *, args: Sequence[str] = ()) -> Dict[str, Any]:
    """Compare two runs' folders (`voicesim diff --json`): pass rates, latency and hearing
    deltas, new failures and fixes. `regressed` says whether `new` regressed beyond the
    thresholds."""
    cmd = [os.fspath(find_binary()), "diff", os.fspath(base), os.fspath(new), "--format", "json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    _check(proc, "voicesim diff")
    report: Dict[str, Any] = json.loads(proc.stdout)
    report["regressed"] = proc.returncode == 1
    return report
