//! The HTML report of a real run, loaded in a real browser (headless Chromium): one entry per
//! call, players that seek when a transcript line is clicked, waveforms drawn, filters, and
//! not one request leaving the page.

mod common;

use std::path::Path;

use common::browser::Browser;
use common::{agent, suite_file, text, voicesim};
use serde_json::Value;

/// Two tests, one the agent meets and one it cannot, on a clean line and in a cafe at two SNRs (not so loud that the agent hears nothing and the call waits out its answer timeout).
const SUITE: &str = "name: report\nstop: { answer_timeout_seconds: 30 }\nnoise:\n  - profile: clean\n  - profile: cafe\n    snr: [20, 10]\ntests:\n  - name: status\n    steps:\n      - goal: Ask about order 4521\n        static_utterance: My order number is four five two one.\n        check: { contains: friday }\n        max_turns: 1\n  - name: zebra\n    steps:\n      - goal: Ask for a zebra\n        static_utterance: Order four five two one, and a zebra.\n        check: { contains: zebra }\n        max_turns: 1\n";

fn results(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn the_report_of_a_run_opens_in_a_browser_plays_and_seeks_with_no_request_leaving_it() {
    let (_agent, url) = agent(&["--protocol", "openai-realtime"]);
    let dir = tempfile::tempdir().unwrap();
    let suite = suite_file(dir.path(), "suite", SUITE);
    let out = dir.path().join("out");
    let o = voicesim(&[
        "run",
        &suite,
        "--agent",
        &format!("{url}?key=sk-secret-in-url"),
        "--protocol",
        "openai-realtime",
        "--parallel",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "the zebra test fails: {t}");
    let report = out.join("report.html");
    assert!(t.contains(&format!("report: {}", report.display())), "{t}");
    let calls = results(&out);
    assert_eq!(calls.len(), 6);
    let failed = calls.iter().filter(|r| r["outcome"] != "passed").count();
    assert!(failed >= 3, "every zebra call fails");
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(
        !page.contains("sk-secret-in-url"),
        "secrets stay out of reports"
    );
    assert!(page.contains("key=***"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing external"
    );

    let mut browser = Browser::start();
    browser.open(&report);
    assert_eq!(
        browser.eval("document.querySelectorAll('details.call').length"),
        6
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('details.call audio').length"),
        6,
        "a player per call"
    );
    // Failures first.
    let order =
        browser.eval("[...document.querySelectorAll('details.call')].map(c => c.dataset.outcome)");
    let order: Vec<&str> = order
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let first_pass = order
        .iter()
        .position(|o| *o == "pass")
        .unwrap_or(order.len());
    assert!(
        order[first_pass..].iter().all(|o| *o == "pass"),
        "{order:?}"
    );
    // Every player's recording is where the page says.
    let srcs = browser.eval(
        "[...document.querySelectorAll('details.call audio')].map(a => a.getAttribute('src'))",
    );
    for src in srcs.as_array().unwrap() {
        assert!(out.join(src.as_str().unwrap()).is_file(), "{src}");
    }
    // The sweep: three charts, pass rate over clean, 20 and 10 dB.
    assert_eq!(
        browser.eval("document.querySelectorAll('svg.chart').length"),
        3
    );
    assert_eq!(
        browser.eval("document.querySelectorAll('svg.chart')[0].querySelectorAll('circle').length"),
        3
    );
    // Filters.
    browser.eval("(() => { const s = document.querySelector('select[name=outcome]'); s.value = 'pass'; s.dispatchEvent(new Event('change', {bubbles: true})); })()");
    let shown = browser
        .eval("[...document.querySelectorAll('details.call')].filter(c => !c.hidden).length");
    assert_eq!(shown.as_u64().unwrap() as usize, 6 - failed);
    browser.eval("(() => { const s = document.querySelector('select[name=outcome]'); s.value = ''; s.dispatchEvent(new Event('change', {bubbles: true})); })()");

    // Open the first passed call, as a user would: its waveform is drawn.
    let passed = format!("#call-{first_pass}");
    browser.click(&format!("{passed} > summary"));
    browser.wait_for(&format!("document.querySelector('{passed}').open"));
    let drawn = browser.eval(&format!(
        "(() => {{ const c = document.querySelector('{passed} canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n; }})()"
    ));
    assert!(
        drawn.as_u64().unwrap() > 1000,
        "the waveform is drawn: {drawn}"
    );
    // The caller's answers in their lane under the events: green where on its reaction time.
    let answers = browser.eval(&format!(
        "(() => {{ const tl = JSON.parse(document.querySelector('{passed}').dataset.tl); return tl.answer.length + tl.late.length; }})()"
    ));
    assert!(
        answers.as_u64().unwrap() >= 1,
        "the call's answers: {answers}"
    );
    let lane = browser.eval(&format!(
        "(() => {{ const c = document.querySelector('{passed} canvas'), s = devicePixelRatio; const d = c.getContext('2d').getImageData(0, 151 * s, c.width, 5 * s).data; let n = 0; for (let i = 0; i < d.length; i += 4) n += (d[i] == 0x1a && d[i + 1] == 0x7f) || (d[i] == 0xcf && d[i + 1] == 0x22); return n; }})()"
    ));
    assert!(lane.as_u64().unwrap() > 0, "the answers are drawn: {lane}");
    // Click its last transcript line: the player seeks to it.
    let line = format!("{passed} ol.transcript li:last-child");
    let t: f64 = browser
        .eval(&format!(
            "parseFloat(document.querySelector('{line}').dataset.t)"
        ))
        .as_f64()
        .unwrap();
    assert!(t > 1.0, "the last line is some way into the call: {t}");
    browser.click(&line);
    browser.wait_for(&format!(
        "Math.abs(document.querySelector('{passed} audio').currentTime - {t}) < 0.3"
    ));
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.png");
    browser.screenshot(&screenshot);
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 50_000);

    // Nothing but the page and its recordings, all local files.
    let requests = browser.requests();
    assert!(!requests.is_empty());
    for r in &requests {
        assert!(
            r.starts_with("file://") || r.starts_with("data:"),
            "a request left the page: {r}"
        );
    }

    // Rebuilt from results.jsonl elsewhere, with the recordings inside: one file, no requests
    // but itself, and the Opus audio plays.
    let single = dir.path().join("attach").join("single.html");
    std::fs::create_dir_all(single.parent().unwrap()).unwrap();
    let o = voicesim(&[
        "report",
        "html",
        out.to_str().unwrap(),
        "--embed-audio",
        "-o",
        single.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut browser = Browser::start();
    browser.open(&single);
    assert_eq!(
        browser.eval("document.querySelectorAll('details.call').length"),
        6
    );
    assert_eq!(
        browser.eval("[...document.querySelectorAll('audio')].every(a => a.src.startsWith('data:audio/ogg'))"),
        true
    );
    let key = browser.eval(&format!(
        "(() => {{ const c = document.querySelector('#call-{first_pass}'); return [c.dataset.test, c.dataset.condition, +c.dataset.run]; }})()"
    ));
    let label = |r: &Value| match r["condition"]["snr"].as_f64() {
        Some(snr) => format!("{}@{snr}dB", r["condition"]["profile"].as_str().unwrap()),
        None => r["condition"]["profile"].as_str().unwrap().to_string(),
    };
    let duration = calls
        .iter()
        .find(|r| r["test"] == key[0] && label(r) == key[1] && r["run"] == key[2])
        .and_then(|r| r["metrics"]["duration_s"].as_f64())
        .unwrap();
    browser.eval(&format!(
        "document.querySelector('#call-{first_pass} audio').load()"
    ));
    browser.wait_for(&format!(
        "document.querySelector('#call-{first_pass} audio').readyState >= 1"
    ));
    let decoded = browser
        .eval(&format!(
            "document.querySelector('#call-{first_pass} audio').duration"
        ))
        .as_f64()
        .unwrap();
    assert!(
        (decoded - duration).abs() < 0.5,
        "the embedded recording decodes to the call's length: {decoded} vs {duration}"
    );
    let files: Vec<String> = browser
        .requests()
        .into_iter()
        .filter(|r| !r.starts_with("data:"))
        .collect();
    assert_eq!(files.len(), 1, "only the page itself: {files:?}");
}
