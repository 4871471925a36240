//! The suite format: what it accepts, and the place and fix of every mistake it refuses.

use std::path::Path;

use voicesim::suite::{Condition, Suite};

fn parse(yaml: &str) -> Result<Suite, String> {
    Suite::parse(yaml, "s.yaml", Path::new(".")).map_err(|e| e.to_string())
}

const GOOD: &str = r#"
name: orders
personas:
  busy:
    background: Calls from a kitchen.
    voice: { name: en-gb, rate_wpm: 190 }
    patience: low
    interrupt: 0.3
scenarios:
  status:
    objective: Learn when order {{ order }} arrives.
    first: caller
noise:
  - profile: clean
  - profile: cafe
    snr: [20, 5]
runs: 2
stop: { max_turns: 6, phrases: [goodbye], phrases_match: all }
tests:
  - name: status
    tags: [P0, smoke]
    persona: busy
    scenario: status
    inputs: { order: "4521" }
    session_parameters: { test_mode: "true" }
    steps:
      - goal: Give the order number
        static_utterance: It's {{ order }}.
        inject_variables: { said: "{{ order }}" }
        check: { any_of: [ { contains: shipped }, { regex: "deliver(ed)? on \\w+day" } ] }
      - goal: Hear it back
        success_criteria: The agent repeats {{ said }}.
        max_turns: 2
    expectations:
      - name: fast
        check: { metric: "latency_p95_ms < 1500" }
      - name: polite
        description: The agent is polite.
  - name: other
    tags: [P1]
    runs: 1
    noise: [ { profile: street, snr: 10 } ]
    steps: [ { goal: Say hi, static_utterance: Hi } ]
"#;

#[test]
fn a_full_suite_is_read_with_its_sweeps_and_overrides() {
    let suite = parse(GOOD).unwrap();
    let status = &suite.tests[0];
    assert_eq!(
        suite.conditions(status),
        vec![
            Condition {
                profile: "clean".into(),
                snr: None
            },
            Condition {
                profile: "cafe".into(),
                snr: Some(20.0)
            },
            Condition {
                profile: "cafe".into(),
                snr: Some(5.0)
            },
        ]
    );
    assert_eq!(
        suite.conditions(&suite.tests[1]),
        vec![Condition {
            profile: "street".into(),
            snr: Some(10.0)
        }]
    );
    assert_eq!(suite.personas["busy"].voice.rate_wpm, Some(190));
    assert_eq!(suite.stop.max_turns.0, 6);
    let p0: Vec<&str> = suite
        .selected(&["P0".into()])
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(p0, ["status"]);
    assert_eq!(suite.selected(&[]).len(), 2);
}

/// Each broken suite, and the place and words its error must carry.
#[test]
fn mistakes_are_reported_at_their_place_with_the_fix() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "name: x\ntests:\n  - name: a\n    steps:\n      - goal: g\n        max_turns: 0\n",
            "s.yaml:5:9",
            "max_turns must be 1..=50, not 0",
        ),
        (
            "name: x\ntests:\n  - name: a\n    steps:\n      - goal: g\n        max_turns: 51\n",
            "s.yaml:5:9",
            "must be 1..=50",
        ),
        (
            "name: x\npersonas:\n  p: { reaction_ms: [900, 300] }\ntests:\n  - name: a\n    steps: [ { goal: g } ]\n",
            "s.yaml:3:",
            "must be [from, to] ms with 0 <= from <= to <= 10000, not [900, 300]",
        ),
        (
            "name: x\nasked_to_repeat: [\"say ... again\", \"...\"]\ntests:\n  - name: a\n    steps: [ { goal: g } ]\n",
            "s.yaml:2:",
            "asked_to_repeat phrase \"...\" has no words on one side of `...`",
        ),
        (
            "name: x\ntests:\n  - name: a\n    stepz: []\n",
            "s.yaml:4:5",
            "unknown field `stepz`",
        ),
        (
            "name: x\ntests:\n  - name: a\n    persona: ghost\n    steps: [ { goal: g } ]\n",
            "s.yaml:4:5",
            "unknown persona \"ghost\"; none are defined",
        ),
        (
            "name: x\ntests:\n  - name: a\n    steps:\n      - goal: g\n        static_utterance: \"{{ ordr }}\"\n",
            "s.yaml:4:5",
            "add it to the test's inputs",
        ),
        (
            "name: x\ntests:\n  - name: a\n    steps:\n      - goal: g\n        check: { regex: \"(\" }\n",
            "s.yaml:6:16",
            "not a regular expression",
        ),
        (
            "name: x\ntests:\n  - name: a\n    steps: [ { goal: g } ]\n    expectations:\n      - name: e\n        check: { metric: \"latncy < 3\" }\n",
            "s.yaml:7:16",
            "unknown metric \"latncy\"",
        ),
        (
            "name: x\ntests:\n  - name: a\n    steps:\n      - goal: g\n        check: { contains: a, regex: b }\n",
            "s.yaml:5:9",
            "exactly one of contains",
        ),
        (
            "name: x\nnoise: [ { profile: kitchen } ]\ntests:\n  - name: a\n    steps: [ { goal: g } ]\n",
            "s.yaml",
            "unknown noise profile \"kitchen\"",
        ),
        ("name: x\ntests: []\n", "s.yaml:2:1", "at least one test"),
        (
            "name: x\ntests:\n  - name: a\n    steps: []\n",
            "s.yaml:4:5",
            "has no steps",
        ),
        (
            "name: x\nruns: 0\ntests:\n  - name: a\n    steps: [ { goal: g } ]\n",
            "s.yaml",
            "runs must be 1..=100",
        ),
        (
            "name: x\ntests:\n  - name: a\n    steps:\n      - goal: g\n        audio: no/such.wav\n",
            "s.yaml:6:9",
            "no file",
        ),
    ];
    for (yaml, place, words) in cases {
        let error = parse(yaml).expect_err(yaml);
        assert!(
            error.starts_with(place),
            "{yaml}\nwanted the place {place}, got: {error}"
        );
        assert!(
            error.contains(words),
            "{yaml}\nwanted {words:?} in: {error}"
        );
    }
}

#[test]
fn the_bundled_example_suite_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/orders.yaml");
    let suite = Suite::load(&path).unwrap();
    assert!(suite.tests.len() >= 3);
}
