//! A `results.jsonl` as `report html`, `diff` and `export` read it (an old run, a merged one, a
//! hand-edited one): the results or an error naming the line, then every report made of them
//! without a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use voicesim::report::{diff, export, folder, html};

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = folder::parse(data, Path::new("results.jsonl")) else {
        return;
    };
    let results = stored.results;
    let d = diff::diff(&results, &results, diff::Thresholds::default());
    let _ = (diff::text(&d), diff::markdown(&d));
    let _ = (export::csv(&results), export::json(&results));
    let _ = voicesim::report::summary(&results);
    let nowhere = Path::new("/nonexistent/voicesim-fuzz");
    let _ = html::render(&results, nowhere, nowhere, Some(&d), &html::HtmlOptions::default());
});
