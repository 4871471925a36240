//! Whole suites against the reference agent on loopback: scripted callers with the rules judge,
//! faulted agents, "not judged" never passing, and the LLM caller and judge against a local
//! server that speaks OpenAI's chat-completions wire format.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use common::whisper;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use voicesim::agent::{AgentConfig, Faults, ReferenceAgent};
use voicesim::judge::Verdict;
use voicesim::llm::{Chat, ChatClient, LlmConfig};
use voicesim::report::{Outcome, RunResult};
use voicesim::transport::turns::Fault;
use voicesim::transport::Protocol;

/// Runs `yaml` against a reference agent with `faults` over Twilio; returns the results and
/// the lines of results.jsonl.
async fn run(
    yaml: &str,
    faults: Faults,
    llm: Option<Arc<dyn Chat>>,
) -> (Vec<RunResult>, Vec<Value>) {
    let (results, lines, _) = run_over(Protocol::Twilio, yaml, faults, llm).await;
    (results, lines)
}

/// As [`run`], over any protocol; also returns each call's call.json.
async fn run_over(
    protocol: Protocol,
    yaml: &str,
    faults: Faults,
    llm: Option<Arc<dyn Chat>>,
) -> (Vec<RunResult>, Vec<Value>, Vec<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let mut config = AgentConfig::new(protocol);
    config.faults = faults;
    let espeak = common::espeak();
    let agent = Arc::new(ReferenceAgent::new(config, espeak.clone(), whisper()));
    let (logs, _keep) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(agent.serve(listener, logs));
    let common::Ran {
        results,
        lines,
        out: _out,
    } = common::run_at(yaml, url, protocol, 2, 1, (espeak, whisper()), llm).await;
    let calls = results
        .iter()
        .map(|r| {
            let dir = r.recording.as_ref().expect("every call is recorded");
            assert!(dir.join("call.wav").is_file() && dir.join("events.jsonl").is_file());
            serde_json::from_str(&std::fs::read_to_string(dir.join("call.json")).unwrap()).unwrap()
        })
        .collect();
    (results, lines, calls)
}

const STATUS: &str = r#"
name: orders
stop: { answer_timeout_seconds: 4 }
tests:
  - name: status
    inputs: { spoken: four five two one }
    steps:
      - goal: Ask about the order
        static_utterance: My order number is {{ spoken }}.
        check: { contains: friday }
        max_turns: 2
      - goal: End the call
        static_utterance: Thank you, goodbye.
        check: { contains: goodbye }
        max_turns: 1
    expectations:
      - name: answered
        check: { metric: "turns >= 3" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suite_passes_against_the_agent_and_fails_where_the_agent_is_faulted() {
    let (results, lines) = run(STATUS, Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
    assert!(r.steps.iter().all(|s| s.verdict == Verdict::Met));
    assert_eq!(r.steps[0].turns, 1);
    assert_eq!(r.metrics.turns, 3, "greeting, answer, goodbye");
    assert!(r.metrics.latency_p50_ms.is_some());
    assert_eq!(lines.len(), 1, "one line per call in results.jsonl");
    assert_eq!(lines[0]["outcome"], "passed");
    assert_eq!(lines[0]["steps"][0]["verdict"], "met");
    // Each answer is held to a person's reaction time (200-800 ms by default), never early.
    assert_eq!(r.reactions.len(), 2, "{:?}", r.reactions);
    for a in &r.reactions {
        let target = a.target_ms.expect("a persona's target");
        assert!((200.0..=800.0).contains(&target), "{a:?}");
        assert!(
            a.reaction_ms >= target - 20.0,
            "said before its moment: {a:?}"
        );
        assert!(
            (a.late_ms - (a.reaction_ms - target).max(0.0)).abs() < 1e-9,
            "{a:?}"
        );
    }
    assert_eq!(lines[0]["reactions"].as_array().map(Vec::len), Some(2));
    // A clean call that went as it should: every noise KPI zero, in results.jsonl too.
    let m = &lines[0]["metrics"];
    for kpi in [
        "no_answers",
        "false_barge_ins",
        "bursts",
        "asked_to_repeat",
        "caller_repeats",
    ] {
        assert_eq!(m[kpi], 0, "{kpi}: {m}");
    }
    assert_eq!(m["abandoned"], false, "{m}");

    // Misheard: the agent answers about another order, twice; the step fails, the call stops.
    let (results, _) = run(
        STATUS,
        Faults {
            mishear: true,
            ..Faults::default()
        },
        None,
    )
    .await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.steps[0].verdict, Verdict::NotMet);
    assert_eq!(r.steps[0].turns, 2, "it tried again before giving up");
    assert!(
        r.steps[0].justification.contains("did not say \"friday\""),
        "{}",
        r.steps[0].justification
    );
    assert_eq!(r.steps[1].justification, "not reached");
    // 4512 is no order: the agent asked for the number again each time, the caller said it
    // again once, then gave up with its turns spent.
    assert_eq!(r.metrics.asked_to_repeat, Some(2), "{:?}", r.transcript);
    assert_eq!(r.metrics.caller_repeats, Some(1));
    assert_eq!(r.metrics.abandoned, Some(true));
    assert_eq!(r.metrics.no_answers, Some(0));

    // Silent: no answer is a fault, and nothing is met.
    let (results, _) = run(
        STATUS,
        Faults {
            silent: true,
            ..Faults::default()
        },
        None,
    )
    .await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(
        matches!(r.faults[..], [Fault::NoAnswer { .. }]),
        "{:?}",
        r.faults
    );
    assert_eq!(r.metrics.no_answers, Some(1));
    assert_eq!(
        r.metrics.abandoned,
        Some(false),
        "the agent's silence ended it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_door_slam_that_stops_the_agent_mid_greeting_is_a_false_barge_in() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("door.yaml");
    std::fs::write(
        &profile,
        format!(
            "name: door\nbursts:\n  - file: {}/fixtures/noise/door.wav\n    snr: -5\n    at: [1.0]\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    let yaml = STATUS.replace(
        "tests:",
        &format!("noise: [{{ profile: {} }}]\ntests:", profile.display()),
    );
    let (results, _) = run(&yaml, Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.metrics.bursts, Some(1));
    // The agent's endpointer takes the slam for the caller and it stops its greeting (and may
    // answer it too); the caller had said nothing yet.
    assert!(
        r.metrics.false_barge_ins >= Some(1),
        "{:?} {:?}",
        r.metrics,
        r.transcript
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wer_metric_is_of_what_the_agent_reports_hearing() {
    let yaml = STATUS.replace(
        r#"check: { metric: "turns >= 3" }"#,
        r#"check: { metric: "wer < 0.5" }"#,
    );
    // OpenAI Realtime agents report their input transcription; the reference agent does too.
    let (results, lines, _) =
        run_over(Protocol::OpenaiRealtime, &yaml, Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
    let wer = r.metrics.wer.expect("the agent reported what it heard");
    assert!(wer < 0.3, "{wer}: the agent hears clean speech well");
    assert_eq!(lines[0]["metrics"]["wer"].as_f64(), Some(wer));

    // Twilio carries no such report: the threshold is not judged, never passed.
    let (results, _) = run(&yaml, Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.metrics.wer, None);
    assert_eq!(r.expectations[0].judgement.verdict, Verdict::NotJudged);
    assert_eq!(r.outcome, Outcome::NotJudged, "{}", r.why());
}

/// A caller with time to think meets its reaction time on every turn: its answer is worked out
/// while the agent is still talking or pausing, and said on its moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_answers_on_its_reaction_time() {
    let yaml = STATUS
        .replace(
            "tests:",
            "personas:\n  slow: { reaction_ms: [3500, 4000] }\ntests:",
        )
        .replace(
            "  - name: status\n",
            "  - name: status\n    persona: slow\n",
        );
    let (results, _) = run(&yaml, Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
    assert_eq!(r.reactions.len(), 2, "{:?}", r.reactions);
    for a in &r.reactions {
        assert!(
            a.target_ms.is_some_and(|t| (3500.0..=4000.0).contains(&t)),
            "{a:?}"
        );
        // On its moment, to the 20 ms frame the call moves in.
        assert!(a.late_ms <= 20.0, "{a:?}");
        assert!(a.reaction_ms >= a.target_ms.unwrap_or(0.0) - 20.0, "{a:?}");
        assert!(a.ahead, "worked out in the agent's pause: {a:?}");
    }
    // The turns the answers belong to were each heard and answered once.
    assert_eq!(r.steps[0].turns, 1, "{:?}", r.transcript);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupting_persona_cuts_into_the_agent_and_the_agent_yields() {
    let suite = |interrupt: f64| {
        format!(
            r#"
name: manners
personas:
  hasty: {{ interrupt: {interrupt} }}
stop: {{ answer_timeout_seconds: 8 }}
tests:
  - name: hasty
    persona: hasty
    steps:
      - goal: Give the order number
        static_utterance: My order number is four five two one.
        check: {{ contains: order }}
        max_turns: 1
"#
        )
    };
    let (_, _, calls) = run_over(Protocol::Twilio, &suite(1.0), Faults::default(), None).await;
    let call = &calls[0];
    let greeting = &call["turns"][0];
    let barge = &greeting["barge_in"];
    assert!(
        barge.is_object(),
        "the caller cut into the greeting: {greeting}"
    );
    let into = barge["at_ms"].as_f64().unwrap() - greeting["agent_started_ms"].as_f64().unwrap();
    assert!(
        (600.0..3000.0).contains(&into),
        "{into} ms into the greeting"
    );
    assert_eq!(
        barge["cleared"], true,
        "the reference agent stops for a barge-in"
    );
    let first_caller_line = call["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["speaker"] == "caller")
        .unwrap();
    assert!(
        first_caller_line["at_ms"].as_f64().unwrap()
            < greeting["agent_started_ms"].as_f64().unwrap()
                + greeting["agent_talk_ms"].as_f64().unwrap()
                + 100.0
    );

    // A patient caller lets the agent finish.
    let (results, _, calls) =
        run_over(Protocol::Twilio, &suite(0.0), Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
    let call = &calls[0];
    assert!(
        call["turns"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["barge_in"].is_null()),
        "{}",
        call["turns"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_rule_or_an_llm_nothing_is_silently_passed() {
    let yaml = r#"
name: words
tests:
  - name: polite
    steps:
      - goal: Say goodbye
        static_utterance: Goodbye.
        success_criteria: The agent says goodbye politely.
    expectations:
      - name: polite
        description: The agent is polite throughout.
"#;
    let (results, lines) = run(yaml, Faults::default(), None).await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::NotJudged, "{}", r.why());
    assert_eq!(r.steps[0].verdict, Verdict::NotJudged);
    assert!(r.steps[0].justification.contains("no LLM judge configured"));
    assert_eq!(r.expectations[0].judgement.verdict, Verdict::NotJudged);
    assert_eq!(lines[0]["outcome"], "not_judged");
}

/// A chat-completions server: the caller's lines are plain text, the judge's (asked for JSON)
/// a verdict. The first request is refused with 429 to exercise the retry.
fn fake_llm(requests: Arc<Mutex<Vec<Value>>>) -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", server.server_addr().to_ip().unwrap());
    std::thread::spawn(move || {
        for mut request in server.incoming_requests() {
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let path_ok = request.url() == "/v1/chat/completions";
            let auth = request
                .headers()
                .iter()
                .any(|h| h.field.equiv("Authorization") && h.value.as_str() == "Bearer sk-test");
            let first = {
                let mut seen = requests.lock().unwrap();
                seen.push(json!({"body": body, "path_ok": path_ok, "auth": auth}));
                seen.len() == 1
            };
            let content = if body["response_format"]["type"] == "json_object" {
                json!({"met": true, "justification": "The agent named the delivery day."})
                    .to_string()
            } else {
                "Hi, my order number is four five two one.".to_string()
            };
            let (status, reply) = if first {
                (429, json!({"error": {"message": "slow down"}}))
            } else {
                (
                    200,
                    json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}),
                )
            };
            let response = tiny_http::Response::from_string(reply.to_string())
                .with_status_code(status)
                .with_header(
                    "Content-Type: application/json"
                        .parse::<tiny_http::Header>()
                        .unwrap(),
                );
            let _ = request.respond(response);
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_llm_plays_the_caller_and_judges_over_the_openai_wire_format() {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let mut config = LlmConfig::new(fake_llm(requests.clone()), "test-model");
    config.api_key = Some("sk-test".into());
    config.requests_per_minute = 600;
    let yaml = r#"
name: llm
personas:
  alex: { background: Alex orders a lot of books., role: customer }
scenarios:
  status: { objective: "Find out when order {{ order }} arrives.", instructions: Be brief. }
tests:
  - name: status
    persona: alex
    scenario: status
    inputs: { order: "4521" }
    steps:
      - goal: Ask when order {{ order }} arrives
        success_criteria: The agent says when the order arrives.
        max_turns: 1
    expectations:
      - name: helpful
        description: The agent was helpful.
"#;
    let (results, _) = run(
        yaml,
        Faults::default(),
        Some(Arc::new(ChatClient::new(config))),
    )
    .await;
    let r = &results[0];
    assert_eq!(r.outcome, Outcome::Passed, "{}", r.why());
    assert_eq!(
        r.steps[0].justification,
        "The agent named the delivery day."
    );
    assert_eq!(
        r.transcript[1].text,
        "Hi, my order number is four five two one."
    );

    let requests = requests.lock().unwrap();
    assert!(requests
        .iter()
        .all(|r| r["path_ok"] == true && r["auth"] == true));
    // 429, then the caller's line, the step's judge, the expectation's judge.
    assert_eq!(requests.len(), 4, "{requests:#?}");
    let caller = &requests[1]["body"];
    assert_eq!(caller["model"], "test-model");
    assert_eq!(caller["messages"][0]["role"], "system");
    let system = caller["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("Alex orders a lot of books.") && system.contains("order 4521 arrives"),
        "{system}"
    );
    assert!(caller.get("response_format").is_none());
    let judge = &requests[2]["body"];
    assert_eq!(judge["response_format"]["type"], "json_object");
    assert!(judge["messages"][1]["content"]
        .as_str()
        .unwrap()
        .contains("Criterion: The agent says when the order arrives."));
}

/// The bundled example suite against the reference agent on a clean line, as the book's first
/// commands run it, with the agent speaking each of its voices: every call passes, the caller
/// heard every agent turn as it played just as it heard the whole turn (hearing drift 0), and
/// each agent line of the transcript is what Whisper hears in that turn's audio, cut from the
/// call's recording.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_suite_passes_on_a_clean_line_in_either_agent_voice_heard_turn_by_turn() {
    let yaml = common::scripted_examples();
    let piper: Arc<dyn voicesim::speech::Tts> = Arc::new(
        voicesim::speech::Piper::load_default()
            .expect("the Piper voice is fetched by `make setup`"),
    );
    let espeak: Arc<dyn voicesim::speech::Tts> = common::espeak();
    for (name, agent_voice) in [("espeak", espeak), ("piper", piper.clone())] {
        let url = common::reference_agent(Protocol::Twilio, agent_voice).await;
        let ran = common::run_at(
            &yaml,
            url,
            Protocol::Twilio,
            2,
            1,
            (piper.clone(), whisper()),
            None,
        )
        .await;
        assert_eq!(ran.results.len(), 3, "{name}");
        for (r, line) in ran.results.iter().zip(&ran.lines) {
            assert_eq!(
                r.outcome,
                Outcome::Passed,
                "{name} {}: {}\n{:#?}",
                r.test,
                r.why(),
                r.reactions
            );
            assert_eq!(
                line["metrics"]["hearing_drift"], 0.0,
                "{name} {}: {:#?}",
                r.test, r.transcript
            );
            let dir = r.recording.as_ref().unwrap();
            let call: Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("call.json")).unwrap())
                    .unwrap();
            let turns = call["turns"].as_array().unwrap();
            let agent_lines: Vec<&voicesim::record::Line> = r
                .transcript
                .iter()
                .filter(|l| l.speaker == voicesim::record::Speaker::Agent)
                .collect();
            assert_eq!(agent_lines.len(), turns.len(), "{name} {}", r.test);
            for (turn, said) in turns.iter().zip(agent_lines) {
                let from = turn["agent_started_ms"].as_f64().unwrap();
                let to = from + turn["agent_talk_ms"].as_f64().unwrap();
                let audio =
                    voicesim::audio::tape::channel_between(&dir.join("call.wav"), 1, from, to)
                        .unwrap();
                let heard = whisper().transcribe(&audio).unwrap().text;
                assert_eq!(
                    voicesim::speech::wer::normalize(&said.text),
                    voicesim::speech::wer::normalize(&heard),
                    "{name} {}: the transcript's turn at {from} ms against its audio",
                    r.test
                );
                assert_eq!(said.heard, None, "{name} {}", r.test);
            }
        }
        // Real result lines for `make test`'s check of them against the published schema
        // (scripts/test-docs.sh, with an independent validator).
        let sample: String = ran.lines.iter().map(|l| format!("{l}\n")).collect();
        let kept = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("results-{name}.jsonl"));
        std::fs::write(kept, sample).unwrap();
    }
}
