//! The local LLM (the GGUF model `make setup` fetches, run in process): it plays a caller
//! against the reference agent, decides labelled transcripts as labelled, samples the same
//! line for the same seed, and refuses a bad model file with a clear error.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use voicesim::judge::eval::{self, JudgeSet};
use voicesim::llm::{default_file, Chat, LlmError, LocalChat, Message};

fn model() -> &'static LocalChat {
    static MODEL: OnceLock<LocalChat> = OnceLock::new();
    MODEL.get_or_init(|| {
        LocalChat::load(&default_file()).unwrap_or_else(|e| {
            panic!("the local chat model is fetched by `make setup` (scripts/fetch-llm.sh): {e}")
        })
    })
}

fn set_path() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/judge/set.yaml"
    ))
}

/// Items of the labelled set the default model must get right: plain passes and fails, and
/// near misses (another order's day, another day, "anything else?" for a goodbye, a transfer
/// only offered).
const MUST_GET_RIGHT: &[&str] = &[
    "4521-clean-delivery",
    "4521-clean-friday-for-7788",
    "4521-clean-monday",
    "1234-clean-tuesday-for-4521",
    "no-number-clean-transfer-offered",
    "9999-clean-cannot-find",
];

#[test]
fn the_local_judge_decides_labelled_transcripts_as_labelled() {
    let set = JudgeSet::load(&set_path()).unwrap();
    for id in MUST_GET_RIGHT {
        let item = set.items.iter().find(|i| i.id == *id).unwrap();
        let judged = eval::judge(model(), item);
        assert_eq!(
            judged.met,
            Some(item.met),
            "{id}: p_met {:?}, {}",
            judged.p_met,
            judged.justification
        );
        assert!(!judged.justification.is_empty(), "{id}");
    }
}

#[test]
fn a_caller_line_is_fixed_by_its_seed_whatever_else_the_model_did() {
    let messages = [
        Message::system(
            "You play a customer phoning about order 4521. Say one short sentence as the caller.",
        ),
        Message::user("Agent: Hello, this is the order line. What is your order number?"),
    ];
    let first = model().line(&messages, 1, 42).unwrap();
    // Another conversation in between, and the same request from a new conversation.
    model().line(&messages, 2, 7).unwrap();
    let again = model().line(&messages, 3, 42).unwrap();
    assert_eq!(first, again);
    assert!(!first.is_empty() && !first.contains('\n'), "{first:?}");
}

#[test]
fn a_conversation_longer_than_the_model_reads_is_an_error_naming_the_fix() {
    let long = "The agent says hello. ".repeat(3000);
    match model().decide(&[Message::user(long)]) {
        Err(LlmError::Model { message, fix, .. }) => {
            assert!(message.contains("tokens"), "{message}");
            assert!(fix.contains("max_turns"), "{fix}");
        }
        other => panic!("{other:?}"),
    }
}

/// An LLM-played caller with an LLM-judged expectation, against `voicesim agent`, through the
/// binary as a user runs it with no endpoint in the environment.
#[test]
fn an_llm_caller_calls_the_reference_agent_offline() {
    let dir = tempfile::tempdir().unwrap();
    let suite = common::suite_file(
        dir.path(),
        "llm",
        r#"
name: llm-caller
agent: { protocol: twilio }
personas:
  customer: { background: A customer at home checking on a parcel., role: customer }
scenarios:
  order-status: { objective: "Find out when order {{ order }} arrives, then end the call politely.", first: agent }
stop: { max_turns: 6, max_seconds: 90, answer_timeout_seconds: 30 }
tests:
  - name: order-status-llm
    persona: customer
    scenario: order-status
    inputs: { order: "4521" }
    steps:
      - goal: Give order number {{ order }} and learn when it arrives
        check: { contains: friday }
        max_turns: 3
    expectations:
      - name: states-the-status
        description: The agent says the order has shipped.
"#,
    );
    let (_agent, url) = common::agent(&[]);
    let out = dir.path().join("out");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voicesim"))
        .args([
            "run",
            &suite,
            "--agent",
            &url,
            "--out",
            out.to_str().unwrap(),
        ])
        .env_remove("VOICESIM_LLM_BASE_URL")
        .env_remove("VOICESIM_LLM_MODEL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let output = common::wait_within(&mut child, std::time::Duration::from_secs(600));
    let printed = common::text(&output);
    assert!(
        printed.contains("LLM caller and judge: Qwen2.5"),
        "{printed}"
    );
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let call: serde_json::Value = serde_json::from_str(results.lines().next().unwrap()).unwrap();
    let lines = call["transcript"].as_array().unwrap();
    let said: Vec<&str> = lines
        .iter()
        .filter(|l| l["speaker"] == "caller")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert!(!said.is_empty(), "{printed}");
    for line in &said {
        // In character, as the caller, never the agent's words; the number as a caller says it.
        assert!(
            !line.is_empty() && !line.contains("Agent") && !line.contains("order line"),
            "{said:?}"
        );
        assert!(!line.chars().any(|c| c.is_ascii_digit()), "{said:?}");
    }
    assert!(
        said.iter()
            .any(|l| l.to_lowercase().contains("four five two one")),
        "{said:?}"
    );
    let expectation = &call["expectations"][0];
    assert!(
        expectation["verdict"] == "met" || expectation["verdict"] == "not_met",
        "the LLM judge gave a verdict: {expectation}"
    );
}

#[test]
fn a_bad_model_file_is_refused_with_its_name_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let set = set_path();
    let eval = |file: &std::path::Path| {
        common::voicesim(&[
            "judge-eval",
            set.to_str().unwrap(),
            "--llm",
            "local",
            "--llm-model",
            file.to_str().unwrap(),
        ])
    };
    let missing = dir.path().join("none.gguf");
    let text = dir.path().join("text.gguf");
    std::fs::write(&text, "not a model").unwrap();
    let cut = dir.path().join("cut.gguf");
    {
        use std::io::Read;
        let mut head = Vec::new();
        let model = std::fs::File::open(default_file()).unwrap();
        model.take(8 << 20).read_to_end(&mut head).unwrap();
        std::fs::write(&cut, head).unwrap();
    }
    let llama = dir.path().join("llama.gguf");
    {
        use candle_core::quantized::gguf_file::{write, Value};
        let mut f = std::fs::File::create(&llama).unwrap();
        let arch = Value::String("llama".into());
        write(&mut f, &[("general.architecture", &arch)], &[]).unwrap();
    }
    for (file, says) in [
        (&missing, "make setup"),
        (&llama, "architecture is \"llama\""),
        (&text, "not a GGUF model file"),
        (&cut, "cut short"),
    ] {
        let o = eval(file);
        let printed = common::text(&o);
        assert_eq!(o.status.code(), Some(2), "{printed}");
        assert!(
            printed.contains(file.to_str().unwrap()) && printed.contains(says),
            "{printed}"
        );
        assert!(!printed.contains("panicked"), "{printed}");
    }
}
