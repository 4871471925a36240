//! Suite YAML: any text is a suite or a placed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let dir = std::path::Path::new("/nonexistent/voicesim-fuzz");
        if let Ok(suite) = voicesim::suite::Suite::parse(text, "fuzz.yaml", dir) {
            // What a run does with a suite before calling anyone.
            for test in &suite.tests {
                let _ = suite.conditions(test);
            }
            let _ = voicesim::sim::run::count(&suite, &[], None, None);
        }
    }
});
