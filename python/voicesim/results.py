"""The results of a run, typed: one `CallResult` a line of the run's `results.jsonl`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

Outcome = Literal["passed", "failed", "not_judged", "error"]
Verdict = Literal["met", "not_met", "not_judged"]


@dataclass(frozen=True)
class Condition:
    """The noise a call ran under: a profile (`clean`, `cafe`, a profile file) and its SNR."""

    profile: str
    snr: Optional[float] = None

    @property
    def label(self) -> str:
        """`clean`, `cafe@20dB`: as voicesim names it in reports and in `--only`."""
        if self.snr is None:
            return self.profile
        snr = int(self.snr) if float(self.snr).is_integer() else self.snr
        return f"{self.profile}@{snr}dB"


@dataclass(frozen=True)
class Judgement:
    """A step's or an expectation's verdict and why."""

    name: str
    verdict: str
    justification: str = ""
    turns: Optional[int] = None

    @property
    def met(self) -> bool:
        return self.verdict == "met"


@dataclass(frozen=True)
class Line:
    """One line of a call's transcript."""

    speaker: str
    text: str
    at_ms: float


@dataclass(frozen=True)
class CallResult:
    """One call: its test, condition and run, how it went and why."""

    suite: str
    test: str
    condition: Condition
    run: int
    outcome: str
    tags: List[str] = field(default_factory=list)
    steps: List[Judgement] = field(default_factory=list)
    expectations: List[Judgement] = field(default_factory=list)
    metrics: Dict[str, Any] = field(default_factory=dict)
    latencies_ms: List[float] = field(default_factory=list)
    faults: List[Any] = field(default_factory=list)
    transcript: List[Line] = field(default_factory=list)
    error: Optional[str] = None
    recording: Optional[Path] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"

    @property
    def id(self) -> str:
        """`order-status/cafe@20dB/run-1`."""
        return f"{self.test}/{self.condition.label}/run-{self.run}"

    def reasons(self) -> List[str]:
        """Why it did not pass: each unmet step and expectation with the judge's reason, each
        fault, the error."""
        out = [
            f"step {j.name!r}: {j.verdict.replace('_', ' ')}: {j.justification}"
            for j in self.steps
            if not j.met
        ]
        out += [
            f"expectation {j.name!r}: {j.verdict.replace('_', ' ')}: {j.justification}"
            for j in self.expectations
            if not j.met
        ]
        out += [f"fault: {json.dumps(f)}" for f in self.faults]
        if self.error:
            out.append(f"error: {self.error}")
        return out

    @classmethod
    def from_json(cls, raw: Dict[str, Any], base: Path) -> "CallResult":
        cond = raw.get("condition") or {}
        recording = raw.get("recording")
        return cls(
            suite=str(raw.get("suite", "")),
            test=str(raw.get("test", "")),
            condition=Condition(str(cond.get("profile", "clean")), cond.get("snr")),
            run=int(raw.get("run", 1)),
            outcome=str(raw.get("outcome", "error")),
            tags=list(raw.get("tags") or []),
            steps=[
                Judgement(
                    str(s.get("goal", "")),
                    str(s.get("verdict", "")),
                    str(s.get("justification", "")),
                    s.get("turns"),
                )
                for s in raw.get("steps") or []
            ],
            expectations=[
                Judgement(
                    str(e.get("name", "")),
                    str(e.get("verdict", "")),
                    str(e.get("justification", "")),
                )
                for e in raw.get("expectations") or []
            ],
            metrics=dict(raw.get("metrics") or {}),
            latencies_ms=list(raw.get("latencies_ms") or []),
            faults=list(raw.get("faults") or []),
            transcript=[
                Line(str(t.get("speaker", "")), str(t.get("text", "")), float(t.get("at_ms", 0)))
                for t in raw.get("transcript") or []
            ],
            error=raw.get("error"),
            recording=_resolve(recording, base) if recording else None,
            raw=raw,
        )


def _resolve(path: str, base: Path) -> Path:
    """A recording path as the run wrote it (relative to where it ran) or to the folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return base / "calls" / Path(*p.parts[p.parts.index("calls") + 1 :]) if "calls" in p.parts else base / p


@dataclass(frozen=True)
class RunResults:
    """A whole run: its calls, where its files are, and how voicesim exited."""

    out: Path
    calls: List[CallResult]
    exit_code: int

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and all(c.passed for c in self.calls)

    @property
    def report(self) -> Path:
        return self.out / "report.html"

    @property
    def junit(self) -> Path:
        return self.out / "junit.xml"

    def failed(self) -> List[CallResult]:
        return [c for c in self.calls if not c.passed]

    @classmethod
    def read(cls, out: Union[str, Path], exit_code: int = 0) -> "RunResults":
        """The results in a run's folder, as far as they are written."""
        out = Path(out)
        return cls(out, read_calls(out / "results.jsonl", out), exit_code)


def read_calls(path: Path, base: Path) -> List[CallResult]:
    """The calls of a `results.jsonl` as far as they are written: a last line without its
    newline is a call still being written (or cut off by a crash), and is left out."""
    return ResultsTail(path, base).read()


class ResultsTail:
    """Follows a `results.jsonl` as voicesim writes it: each `read` returns the calls finished
    since the last, reading only what was added (a run of a thousand calls writes megabytes,
    and a waiting test asks several times a second)."""

    def __init__(self, path: Path, base: Path):
        self.path, self.base, self.offset = path, base, 0

    def read(self) -> List[CallResult]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                added = f.read()
        except FileNotFoundError:
            return []
        whole = added.rfind(b"\n") + 1  # a line still being written waits for its newline
        self.offset += whole
        return [
            CallResult.from_json(json.loads(line), self.base)
            for line in added[:whole].splitlines()
            if line.strip()
        ]
