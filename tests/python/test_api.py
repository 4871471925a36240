"""`import voicesim`: a run from Python, with typed results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import voicesim


def test_a_run_returns_typed_results_of_a_suite_given_as_a_dict(
    voicesim_agent: Any, tmp_path: Path
) -> None:
    from conftest import free_port

    # The agent started from a command by the plugin's fixture, which waits for its port.
    port = free_port()
    agent = f"ws://127.0.0.1:{port}/"
    voicesim_agent(f"{voicesim.find_binary()} agent --listen 127.0.0.1:{port}", agent)
    suite = {
        "name": "from-python",
        "stop": {"max_turns": 4, "max_seconds": 40, "answer_timeout_seconds": 8},
        "tests": [
            {
                "name": "order-status",
                "steps": [
                    {
                        "goal": "Ask when order 4521 arrives",
                        "static_utterance": "Hi, my order number is four five two one.",
                        "check": {"contains": "friday"},
                        "max_turns": 2,
                    }
                ],
                "expectations": [{"name": "no-monday", "check": {"not": {"contains": "monday"}}}],
            }
        ],
    }
    results = voicesim.run(
        suite, agent=agent, noise=["clean", {"profile": "cafe", "snr": 20}],
        out=tmp_path / "run", progress=False,
    )
    assert results.passed, [c.reasons() for c in results.calls]
    assert sorted(c.condition.label for c in results.calls) == ["cafe@20dB", "clean"]
    call = results.calls[0]
    assert isinstance(call, voicesim.CallResult)
    assert call.steps[0].met and call.steps[0].name == "Ask when order 4521 arrives"
    assert [e.name for e in call.expectations] == ["no-monday"]
    assert call.latencies_ms and all(ms > 0 for ms in call.latencies_ms)
    assert any(line.speaker == "agent" and "friday" in line.text.lower() for line in call.transcript)
    assert call.recording is not None and (call.recording / "call.wav").is_file()
    assert results.report.is_file() and results.junit.is_file()

    # A run compared with itself has not regressed.
    assert voicesim.diff(results.out, results.out)["regressed"] is False


def test_plan_lists_the_calls_and_a_bad_suite_raises_with_the_place(tmp_path: Path) -> None:
    from conftest import SUITE

    path = tmp_path / "orders.yaml"
    path.write_text(SUITE)
    ids = [c.id for c in voicesim.plan(path, only=["order-status/cafe@20dB", "wrong-day"])]
    assert ids == ["order-status/cafe@20dB/run-1", "wrong-day/clean/run-1"]
    path.write_text(SUITE.replace("static_utterance", "static_utterence", 1))
    with pytest.raises(voicesim.VoicesimError) as e:
        voicesim.plan(path)
    assert e.value.exit_code == voicesim.EXIT_BAD_INPUT
    assert "orders.yaml:" in str(e.value) and "static_utterence" in str(e.value)


def test_results_are_followed_as_written_and_a_half_written_line_waits(tmp_path: Path) -> None:
    from voicesim.results import ResultsTail

    path = tmp_path / "results.jsonl"
    tail = ResultsTail(path, tmp_path)
    assert tail.read() == []  # not written yet

    def line(test: str) -> bytes:
        return f'{{"test": "{test}", "outcome": "passed", "run": 1}}\n'.encode()

    with path.open("ab") as f:
        f.write(line("a") + line("b")[:12])
        f.flush()
        assert [c.test for c in tail.read()] == ["a"]
        f.write(line("b")[12:] + line("c"))
        f.flush()
        assert [c.test for c in tail.read()] == ["b", "c"]
        assert tail.read() == []
    # Read whole, the same file gives every call once.
    assert [c.test for c in voicesim.RunResults.read(tmp_path).calls] == ["a", "b", "c"]
