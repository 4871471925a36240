"""The pytest plugin as a team uses it: a suite's calls as items, selected and reported the
pytest way."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest


def calls_made(project: pytest.Pytester) -> list[str]:
    lines = (project.path / "calls" / "orders" / "results.jsonl").read_text().splitlines()
    return sorted(
        f"{r['test']}/{r['condition']['profile']}" for r in map(json.loads, filter(None, lines))
    )


def test_each_call_is_an_item_that_passes_or_fails_as_the_suite_says(
    suite_project: pytest.Pytester,
) -> None:
    result = suite_project.runpytest("-v", "--junitxml=junit.xml")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*orders.voicesim.yaml::order-status?clean-run1? PASSED*",
            "*orders.voicesim.yaml::order-status?cafe@20dB-run1? PASSED*",
            "*orders.voicesim.yaml::wrong-day?clean-run1? FAILED*",
        ]
    )
    # The failure is the judge's reason with what was said and where the call is, not a
    # traceback from inside the plugin.
    result.stdout.fnmatch_lines(
        [
            "*wrong-day/clean/run-1: failed*",
            "*step 'Ask when order 4521 arrives, expecting Monday': not met*",
            "*transcript:*",
            "*agent:*Friday*",
            "*recording: *calls*wrong-day*",
            "*report: *report.html*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "pytest_plugin.py" not in result.stdout.str()
    # The three calls ran in one voicesim process, into one run folder.
    assert calls_made(suite_project) == ["order-status/cafe", "order-status/clean", "wrong-day/clean"]
    cases = ET.parse(suite_project.path / "junit.xml").getroot().iter("testcase")
    outcome = {
        c.get("name"): "failed" if c.find("failure") is not None else "passed" for c in cases
    }
    assert outcome == {
        "order-status[clean-run1]": "passed",
        "order-status[cafe@20dB-run1]": "passed",
        "wrong-day[clean-run1]": "failed",
    }

    # --lf makes only the failed call again.
    again = suite_project.runpytest("--lf")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["*rerun previous 1 failure*"])
    assert calls_made(suite_project) == ["wrong-day/clean"]


def test_k_selects_calls_and_only_the_selected_are_made(suite_project: pytest.Pytester) -> None:
    result = suite_project.runpytest("-k", "order-status and cafe")
    result.assert_outcomes(passed=1, deselected=2)
    assert calls_made(suite_project) == ["order-status/cafe"]


def test_collect_only_calls_no_one(suite_project: pytest.Pytester) -> None:
    result = suite_project.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*order-status?clean-run1?",
            "*order-status?cafe@20dB-run1?",
            "*wrong-day?clean-run1?",
            "*3 tests collected*",
        ]
    )
    assert not (suite_project.path / "calls").exists()


def test_a_bad_suite_is_an_error_that_names_the_place_and_the_fix(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".voicesim.yaml", broken="name: x\ntests:\n  - name: t\n    stepz: []\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*voicesim cannot use the suite*broken.voicesim.yaml*", "*stepz*"])
    assert "Traceback" not in result.stdout.str()


def test_an_unreachable_agent_fails_each_item_saying_so(pytester: pytest.Pytester) -> None:
    from conftest import SUITE, free_port

    pytester.makefile(".voicesim.yaml", orders=SUITE)
    result = pytester.runpytest(f"--voicesim-agent=ws://127.0.0.1:{free_port()}/", "-k", "wrong-day")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(["*wrong-day/clean/run-1: error*", "*error: *127.0.0.1*"])
    assert "Traceback" not in result.stdout.str()


def test_a_missing_binary_says_how_to_install_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import SUITE

    pytester.makefile(".voicesim.yaml", orders=SUITE)
    monkeypatch.setenv("VOICESIM_BIN", str(pytester.path / "no-such-voicesim"))
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(["*VOICESIM_BIN names*no-such-voicesim*"])
    assert "Traceback" not in result.stdout.str()


def test_with_xdist_a_suite_s_calls_go_to_one_worker_together(
    suite_project: pytest.Pytester,
) -> None:
    result = suite_project.runpytest("-n", "2")
    result.assert_outcomes(passed=2, failed=1)
    assert calls_made(suite_project) == ["order-status/cafe", "order-status/clean", "wrong-day/clean"]
