//! What an LLM server answers: the chat-completions body, the JSON the judge asked for inside
//! it, the verdict in that JSON. An answer or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = std::str::from_utf8(data) else {
        return;
    };
    for text in [voicesim::llm::content_of(body).ok(), Some(body.to_string())]
        .into_iter()
        .flatten()
    {
        if let Ok(answer) = voicesim::llm::json_in(&text) {
            let _ = voicesim::llm::decision_of(&answer);
        }
    }
});
