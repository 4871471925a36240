//! `report.html`: one static page a person opens from disk to see and hear a run.
//!
//! Everything is inline (CSS, a little JS, SVG charts): the page makes no request but for the
//! recordings, which are referenced by relative path so the page travels with its `calls/`
//! folder, or inlined as Ogg Opus with `embed_audio`. Each call is collapsed until opened and
//! its waveform is drawn from the call's precomputed envelope (`envelope.json`), so a run of
//! thousands of calls stays a page of a few megabytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::diff::{Change, Diff};
use super::folder;
use super::{Outcome, Row, RunResult};
use crate::audio::Envelope;
use crate::judge::Verdict;
use crate::record::{Speaker, Waveform, WAVEFORM};

const STYLE: &str = include_str!("report.css");
const SCRIPT: &str = include_str!("report.js");
/// What the marks under a waveform mean: one copy, put under each call as it is drawn.
const LEGEND: &str = "<template id=\"legend\"><div class=\"legend\"><i class=\"k-caller\"></i>caller <i class=\"k-agent\"></i>agent <i class=\"k-lat\"></i>latency <i class=\"k-burst\"></i>burst <i class=\"k-barge\"></i>barge-in <i class=\"k-clear\"></i>clear <i class=\"k-drop\"></i>dropout <i class=\"k-lost\"></i>lost packet <i class=\"k-answer\"></i>caller's answer <i class=\"k-late\"></i>late answer</div></template>";

/// How the page is made.
#[derive(Debug, Clone, Default)]
pub struct HtmlOptions {
    /// Inline every recording (Ogg Opus) instead of linking it.
    pub embed_audio: bool,
}

/// A call's folder, as found next to the results.
struct CallFiles {
    /// Where the recording is, relative to the page when it can be.
    dir: Option<PathBuf>,
    /// The folder as the page links it.
    link: Option<String>,
}

/// Finds a call's folder: first where the results folder's layout puts it, then where the
/// result says it was recorded.
fn call_files(results_dir: &Path, page_dir: &Path, r: &RunResult) -> CallFiles {
    let layout = folder::call_dir(&r.test, &r.condition.label(), r.run);
    let candidates = [Some(results_dir.join(&layout)), r.recording.clone()];
    let Some(dir) = candidates.into_iter().flatten().find(|d| d.is_dir()) else {
        return CallFiles {
            dir: None,
            link: None,
        };
    };
    let link = relative(page_dir, &dir);
    CallFiles {
        dir: Some(dir),
        link: Some(link),
    }
}

/// `target` as a URL path relative to `from` when one is inside the other's tree, else absolute.
fn relative(from: &Path, target: &Path) -> String {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (from, target) = (abs(from), abs(target));
    let path = match target.strip_prefix(&from) {
        Ok(rest) => rest.to_path_buf(),
        Err(_) => {
            // Up from the page to a common ancestor, then down.
            let mut up = PathBuf::new();
            let mut base = from.as_path();
            loop {
                if let Ok(rest) = target.strip_prefix(base) {
                    break up.join(rest);
                }
                match base.parent() {
                    Some(parent) => {
                        up.push("..");
                        base = parent;
                    }
                    None => break target.clone(),
                }
            }
        }
    };
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            std::path::Component::Normal(p) => Some(url_escape(&p.to_string_lossy())),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let joined = parts.join("/");
    if path.is_absolute() {
        format!("file:///{joined}")
    } else {
        joined
    }
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b'/' => "%2F".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Each value once, in the order it first appears.
fn distinct<T: PartialEq>(values: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen
}

/// HTML text and attribute escaping.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON for a single-quoted attribute: its double quotes stay as they are, which keeps a
/// thousand calls' waveforms and timelines small.
fn json_attr(v: &Value) -> String {
    v.to_string()
        .replace('&', "&amp;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "passed",
        Outcome::Failed => "failed",
        Outcome::NotJudged => "not judged",
        Outcome::Error => "error",
    }
}

fn outcome_class(o: Outcome) -> &'static str {
    match o {
        Outcome::Passed => "pass",
        Outcome::Failed => "fail",
        Outcome::NotJudged => "nj",
        Outcome::Error => "err",
    }
}

fn verdict_class(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "pass",
        Verdict::NotMet => "fail",
        Verdict::NotJudged => "nj",
    }
}

fn clock(ms: f64) -> String {
    let s = (ms / 1000.0).max(0.0);
    format!("{}:{:04.1}", (s / 60.0).floor() as u64, s % 60.0)
}

/// The events drawn under a call's waveform, from its folder's `events.jsonl` and `call.json`.
fn timeline(dir: &Path, duration_ms: f64) -> Value {
    let mut caller: Vec<[f64; 2]> = Vec::new();
    let (mut bursts, mut lost, mut clears, mut drops) = (vec![], vec![], vec![], vec![]);
    let mut speaking: Option<f64> = None;
    let events = std::fs::read_to_string(dir.join("events.jsonl")).unwrap_or_default();
    for e in events
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        let at = e.get("at_ms").and_then(Value::as_f64).unwrap_or(0.0);
        match e.get("event").and_then(Value::as_str) {
            Some("mic") => {
                let detail = e.get("detail");
                let at = detail
                    .and_then(|d| d.get("at_ms"))
                    .and_then(Value::as_f64)
                    .unwrap_or(at);
                match detail.and_then(|d| d.get("event")).and_then(Value::as_str) {
                    Some("speech_started") => speaking = Some(at),
                    Some("speech_ended") => {
                        if let Some(start) = speaking.take() {
                            caller.push([start, at]);
                        }
                    }
                    Some("burst") => bursts.push(at),
                    Some("frame_lost") => lost.push(at),
                    _ => {}
                }
            }
            Some("agent_cleared") => clears.push(at),
            Some("agent_underrun") => {
                let gap = e.get("gap_ms").and_then(Value::as_f64).unwrap_or(0.0);
                drops.push([at - gap, at]);
            }
            _ => {}
        }
    }
    if let Some(start) = speaking {
        caller.push([start, duration_ms]);
    }
    let (mut agent, mut latency, mut barges) = (vec![], vec![], vec![]);
    let record: Value = std::fs::read(dir.join("call.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for t in record
        .get("turns")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let num = |k: &str| t.get(k).and_then(Value::as_f64);
        if let Some(start) = num("agent_started_ms") {
            agent.push([start, start + num("agent_talk_ms").unwrap_or(0.0)]);
            if let Some(ended) = num("caller_ended_ms") {
                if num("response_latency_ms").is_some() {
                    latency.push([ended, start]);
                }
            }
        }
        if let Some(at) = t.pointer("/barge_in/at_ms").and_then(Value::as_f64) {
            barges.push(at);
        }
    }
    // The caller's answers: from the agent's voice stopping to the caller's starting, on its
    // reaction time or late for it.
    let (mut answers, mut late) = (vec![], vec![]);
    for a in record
        .get("reactions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let num = |k: &str| a.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        let span = [
            num("agent_stopped_ms"),
            num("agent_stopped_ms") + num("reaction_ms"),
        ];
        if num("late_ms") > crate::audio::FRAME_MS as f64 {
            late.push(span);
        } else {
            answers.push(span);
        }
    }
    let ms = |v: &[f64]| v.iter().map(|t| t.round() as i64).collect::<Vec<_>>();
    let spans = |v: &[[f64; 2]]| {
        v.iter()
            .map(|[a, b]| [a.round() as i64, b.round() as i64])
            .collect::<Vec<_>>()
    };
    let (caller, agent, latency, drops, answers, late) = (
        spans(&caller),
        spans(&agent),
        spans(&latency),
        spans(&drops),
        spans(&answers),
        spans(&late),
    );
    let (bursts, barges, clears, lost) = (ms(&bursts), ms(&barges), ms(&clears), ms(&lost));
    json!({
        "d": duration_ms.round() as i64, "caller": caller, "agent": agent, "latency": latency,
        "burst": bursts, "barge": barges, "clear": clears, "drop": drops, "lost": lost,
        "answer": answers, "late": late,
    })
}

/// The envelope of a call: `envelope.json`, or computed from `call.wav` for runs older than it.
fn waveform(dir: &Path) -> Option<Waveform> {
    if let Some(w) = std::fs::read(dir.join(WAVEFORM))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        return Some(w);
    }
    let (channels, rate) = read_stereo(&dir.join("call.wav"))?;
    let mut channels = channels.into_iter();
    let caller = crate::audio::Clip::new(channels.next()?, rate);
    let agent = crate::audio::Clip::new(channels.next().unwrap_or_default(), rate);
    Some(Waveform {
        caller: Envelope::of(&caller),
        agent: Envelope::of(&agent),
    })
}

/// The channels of a call's recording, as floats.
fn read_stereo(path: &Path) -> Option<(Vec<Vec<f32>>, u32)> {
    let channels = crate::audio::Clip::open_channels(path).ok()?;
    let rate = channels.first()?.rate;
    Some((channels.into_iter().map(|c| c.samples).collect(), rate))
}

/// The recording as a `data:` URL: Ogg Opus where it can be encoded, else the WAV itself.
fn embedded(dir: &Path) -> Option<String> {
    use base64::Engine as _;
    let wav = dir.join("call.wav");
    let (bytes, mime) = match read_stereo(&wav).and_then(|(ch, rate)| super::opus::ogg(&ch, rate)) {
        Some(ogg) => (ogg, "audio/ogg; codecs=opus"),
        None => (std::fs::read(&wav).ok()?, "audio/wav"),
    };
    Some(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The run's header, from the results themselves (so merged and old runs have one too).
fn header(results: &[RunResult]) -> String {
    let distinct = |f: &dyn Fn(&RunResult) -> String| {
        let v = distinct(results.iter().map(f).filter(|s| !s.is_empty()));
        if v.is_empty() {
            "not recorded".to_string()
        } else {
            v.join(", ")
        }
    };
    let starts: Vec<std::time::SystemTime> = results
        .iter()
        .filter_map(|r| humantime::parse_rfc3339(&r.started_at).ok())
        .collect();
    let first = starts.iter().min().copied();
    let last_end = results
        .iter()
        .filter_map(|r| {
            let start = humantime::parse_rfc3339(&r.started_at).ok()?;
            Some(start + std::time::Duration::from_secs_f64(r.metrics.duration_s.max(0.0)))
        })
        .max();
    let duration = match (first, last_end) {
        (Some(a), Some(b)) => b
            .duration_since(a)
            .map(|d| format!("{:.0} s", d.as_secs_f64()))
            .unwrap_or_default(),
        _ => "not recorded".into(),
    };
    let count = |o: Outcome| results.iter().filter(|r| r.outcome == o).count();
    let mut out = String::from("<dl class=\"head\">");
    for (k, v) in [
        ("agent", distinct(&|r| r.origin.agent.clone())),
        ("protocol", distinct(&|r| r.origin.protocol.clone())),
        (
            "seed",
            distinct(&|r| {
                if r.origin.voicesim.is_empty() {
                    String::new()
                } else {
                    r.origin.seed.to_string()
                }
            }),
        ),
        ("voicesim", distinct(&|r| r.origin.voicesim.clone())),
        (
            "started",
            first.map_or("not recorded".into(), |t| {
                humantime::format_rfc3339_seconds(t).to_string()
            }),
        ),
        ("duration", duration),
    ] {
        let _ = write!(out, "<div><dt>{k}</dt><dd>{}</dd></div>", esc(&v));
    }
    let _ = write!(
        out,
        "<div><dt>calls</dt><dd><b class=\"pass\">{} passed</b> · <b class=\"fail\">{} failed</b> · <b class=\"nj\">{} not judged</b> · <b class=\"err\">{} errors</b></dd></div></dl>",
        count(Outcome::Passed),
        count(Outcome::Failed),
        count(Outcome::NotJudged),
        count(Outcome::Error)
    );
    out
}

/// Tests × conditions with pass^k, coloured; with a baseline, what each cell was.
fn matrix(results: &[RunResult], baseline: Option<&Diff>) -> String {
    let rows = super::rows(results);
    let tests = distinct(rows.iter().map(|r| r.test.as_str()));
    let conditions = distinct(rows.iter().map(|r| r.condition.as_str()));
    let mut out = String::from("<table class=\"matrix\"><thead><tr><th>test</th>");
    for c in &conditions {
        let _ = write!(out, "<th>{}</th>", esc(c));
    }
    out.push_str("</tr></thead><tbody>");
    for t in &tests {
        let _ = write!(out, "<tr><th>{}</th>", esc(t));
        for c in &conditions {
            match rows.iter().find(|r| r.test == *t && r.condition == *c) {
                Some(row) => out.push_str(&cell(row, baseline)),
                None => out.push_str("<td class=\"none\">–</td>"),
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

fn cell(row: &Row, baseline: Option<&Diff>) -> String {
    // Nothing to pass or fail: a recording analyzed, or calls no verdict could be decided on.
    if row.not_judged == row.runs {
        return format!(
            "<td class=\"nj\" data-test=\"{}\" data-condition=\"{}\"><b>not judged</b>{}</td>",
            esc(&row.test),
            esc(&row.condition),
            row.latency_p50_ms
                .map_or(String::new(), |v| format!("<small>p50 {v:.0} ms</small>"))
        );
    }
    let class = if row.pass_k {
        "pass"
    } else if row.passed > 0 {
        "some"
    } else {
        "fail"
    };
    let p50 = row
        .latency_p50_ms
        .map_or(String::new(), |v| format!("<small>p50 {v:.0} ms</small>"));
    let delta = baseline
        .and_then(|d| d.row(&row.test, &row.condition))
        .map_or(String::new(), |d| {
            let was = if d.base.runs == 0 {
                "new".to_string()
            } else {
                format!("was {}/{}", d.base.passed, d.base.runs)
            };
            let mark = match d.change {
                Change::Regressed => "regressed",
                Change::Worse => "worse",
                Change::Better => "better",
                _ => "",
            };
            let said = if mark.is_empty() {
                String::new()
            } else {
                format!(" · {mark}")
            };
            format!("<small class=\"delta {mark}\">{was}{said}</small>")
        });
    format!(
        "<td class=\"{class}\" data-test=\"{}\" data-condition=\"{}\"><b>{}/{}</b>{}{p50}{delta}</td>",
        esc(&row.test),
        esc(&row.condition),
        row.passed,
        row.runs,
        if row.pass_k { " <i>pass^k</i>" } else { "" }
    )
}

/// The noise KPIs per test and condition, each against the same test's clean calls.
fn kpis(results: &[RunResult]) -> String {
    use super::kpi::HEADS;
    let mut out =
        String::from("<table class=\"verdicts kpis\"><thead><tr><th>test</th><th>condition</th>");
    for (head, title) in HEADS {
        let _ = write!(out, "<th title=\"{}\">{}</th>", esc(title), esc(head));
    }
    out.push_str("</tr></thead><tbody>");
    for k in super::kpi::by_test(results) {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td>",
            esc(&k.test),
            esc(&k.condition)
        );
        for c in k.cells() {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// One point of a noise sweep: all tests under one condition.
struct SweepPoint {
    label: String,
    pass_rate: f64,
    latency_p50: Option<f64>,
    wer: Option<f64>,
}

/// Pass rate, latency p50 and hearing WER against SNR, for every profile run at two or more
/// SNRs (with the clean line as the first point when the run has one).
/// Each test's task threshold under each adaptive profile: the staircase's trials as passes
/// (top) and fails (bottom) against the SNR, the fitted curve, the threshold and its interval.
fn thresholds(results: &[RunResult]) -> String {
    let mut out = String::new();
    for t in super::threshold::of(results) {
        let _ = write!(
            out,
            "<figure class=\"sweep threshold\"><figcaption>{} under {} noise: {}, {} calls</figcaption>{}</figure>",
            esc(&t.test),
            esc(&t.profile),
            esc(&t.describe()),
            t.calls,
            curve(&t)
        );
    }
    out
}

/// The SVG of one threshold: x is the SNR (quieter noise to the right), y the share of calls
/// passed.
fn curve(t: &super::threshold::TaskThreshold) -> String {
    use crate::psychometric::Estimate;
    let (w, h, left, right, up, down) = (420.0, 190.0, 40.0, 16.0, 14.0, 30.0);
    let snrs: Vec<f64> = t.trials.iter().map(|p| p.snr_db).collect();
    let lo = snrs.iter().copied().fold(f64::INFINITY, f64::min).floor() - 2.0;
    let hi = snrs
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .ceil()
        + 2.0;
    if !(lo.is_finite() && hi > lo) {
        return String::new();
    }
    let x = |db: f64| left + (w - left - right) * (db - lo) / (hi - lo);
    let y = |p: f64| up + (h - up - down) * (1.0 - p);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(&t.describe())
    );
    for p in [0.0, 0.5, 1.0] {
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{:.0}%</text>",
            w - right,
            left - 4.0,
            y(p) + 4.0,
            p * 100.0,
            y = y(p)
        );
    }
    let ticks = ((hi - lo) / 5.0).ceil().max(1.0) as usize;
    for k in 0..=ticks {
        let db = lo + (hi - lo) * k as f64 / ticks as f64;
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{db:.0} dB</text>",
            x(db),
            h - 8.0
        );
    }
    if let Estimate::Found(f) = &t.estimate {
        let (a, b) = (
            f.low_db.unwrap_or(lo).max(lo),
            f.high_db.unwrap_or(hi).min(hi),
        );
        let _ = write!(
            svg,
            "<rect x=\"{:.1}\" y=\"{up}\" width=\"{:.1}\" height=\"{:.1}\" class=\"interval\"><title>95% interval</title></rect><line x1=\"{x0:.1}\" x2=\"{x0:.1}\" y1=\"{up}\" y2=\"{:.1}\" class=\"threshold\"/>",
            x(a),
            (x(b) - x(a)).max(1.0),
            h - up - down,
            h - down,
            x0 = x(f.threshold_db)
        );
        let odds = (t.target / (1.0 - t.target)).ln();
        let points: Vec<String> = (0..=80)
            .map(|i| {
                let db = lo + (hi - lo) * i as f64 / 80.0;
                let p = 1.0 / (1.0 + (-(odds + f.slope_per_db * (db - f.threshold_db))).exp());
                format!("{:.1},{:.1}", x(db), y(p))
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" class=\"line\"/>",
            points.join(" ")
        );
    }
    for (i, p) in t.trials.iter().enumerate() {
        // Trials at one SNR spread a little, so each shows.
        let jitter = (i % 5) as f64 * 0.012;
        let (level, class) = if p.passed {
            (1.0 - jitter, "dot")
        } else {
            (jitter, "dot failed")
        };
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" class=\"{class}\"><title>{} dB: {}</title></circle>",
            x(p.snr_db),
            y(level),
            p.snr_db,
            if p.passed { "passed" } else { "failed" }
        );
    }
    svg.push_str("</svg>");
    svg
}

fn sweep(results: &[RunResult]) -> String {
    // A staircase's trials are drawn as its threshold's curve, not as a sweep.
    let results: Vec<&RunResult> = results.iter().filter(|r| r.trial.is_none()).collect();
    let profiles = distinct(
        results
            .iter()
            .filter(|r| r.condition.snr.is_some())
            .map(|r| r.condition.profile.clone()),
    );
    let mut out = String::new();
    for profile in profiles {
        let mut snrs: Vec<f64> = results
            .iter()
            .filter(|r| r.condition.profile == profile)
            .filter_map(|r| r.condition.snr)
            .collect();
        snrs.sort_by(|a, b| b.total_cmp(a));
        snrs.dedup();
        if snrs.len() < 2 {
            continue;
        }
        let point = |label: String, group: Vec<&RunResult>| {
            let row = Row::of(String::new(), label.clone(), &group);
            let wers: Vec<f64> = group.iter().filter_map(|r| r.metrics.wer).collect();
            SweepPoint {
                label,
                pass_rate: row.passed as f64 / row.runs.max(1) as f64,
                latency_p50: row.latency_p50_ms,
                wer: (!wers.is_empty()).then(|| wers.iter().sum::<f64>() / wers.len() as f64),
            }
        };
        let mut points = Vec::new();
        let clean: Vec<&RunResult> = results
            .iter()
            .copied()
            .filter(|r| r.condition.profile == "clean")
            .collect();
        if !clean.is_empty() {
            points.push(point("clean".into(), clean));
        }
        for snr in snrs {
            let group = results
                .iter()
                .copied()
                .filter(|r| r.condition.profile == profile && r.condition.snr == Some(snr))
                .collect();
            points.push(point(format!("{snr} dB"), group));
        }
        let labels: Vec<String> = points
            .iter()
            .map(|p: &SweepPoint| p.label.clone())
            .collect();
        let series = |value: fn(&SweepPoint) -> Option<f64>| -> Vec<Option<f64>> {
            points.iter().map(value).collect()
        };
        let _ = write!(
            out,
            "<figure class=\"sweep\"><figcaption>{} noise, louder to the right (all tests)</figcaption>{}{}{}</figure>",
            esc(&profile),
            chart("calls passed", &labels, &series(|p| Some(p.pass_rate * 100.0)), Some(100.0), "%"),
            chart("latency p50", &labels, &series(|p| p.latency_p50), None, " ms"),
            chart("agent's hearing WER", &labels, &series(|p| p.wer.map(|w| w * 100.0)), None, "%"),
        );
    }
    out
}

/// Stretches a load run's charts show at most: a point per stretch of seconds.
const LOAD_POINTS: usize = 12;

/// A load run's `timeseries.jsonl` as charts: calls up, latency p95, failures, over time.
fn load(results_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(results_dir.join(super::folder::SERIES)).ok()?;
    let seconds: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if seconds.is_empty() {
        return None;
    }
    let span = seconds.len().div_ceil(LOAD_POINTS);
    let stretches: Vec<&[Value]> = seconds.chunks(span).collect();
    let labels: Vec<String> = stretches
        .iter()
        .map(|c| format!("{}s", c.last().and_then(|s| s["t"].as_u64()).unwrap_or(0)))
        .collect();
    // Over a stretch: the most calls up, the worst second's p95, the failures added up.
    let most = |field: &str| -> Vec<Option<f64>> {
        stretches
            .iter()
            .map(|c| c.iter().filter_map(|s| s[field].as_f64()).reduce(f64::max))
            .collect()
    };
    let sum = |field: &str| -> Vec<Option<f64>> {
        stretches
            .iter()
            .map(|c| Some(c.iter().filter_map(|s| s[field].as_f64()).sum()))
            .collect()
    };
    Some(format!(
        "<figure class=\"sweep\"><figcaption>{} s, {} s a point</figcaption>{}{}{}</figure>",
        seconds.len(),
        span,
        chart("calls up", &labels, &most("active"), None, ""),
        chart("latency p95", &labels, &most("latency_p95_ms"), None, " ms"),
        chart("calls failed", &labels, &sum("failed"), None, ""),
    ))
}

/// A small line chart as inline SVG: categorical x (a sweep's conditions, a load run's
/// stretches of time), one series.
fn chart(
    title: &str,
    labels: &[String],
    values: &[Option<f64>],
    top: Option<f64>,
    unit: &str,
) -> String {
    let (w, h, left, right, up, down) = (300.0, 170.0, 52.0, 24.0, 24.0, 28.0);
    let max = top.unwrap_or_else(|| {
        let m = values.iter().flatten().fold(0.0f64, |a, &b| a.max(b));
        if m <= 0.0 {
            1.0
        } else {
            // A round top: 1, 2 or 5 times a power of ten.
            let step = 10f64.powf(m.log10().floor());
            [1.0, 2.0, 5.0, 10.0]
                .iter()
                .map(|k| k * step)
                .find(|v| *v >= m)
                .unwrap_or(m)
        }
    });
    let n = labels.len().max(2) as f64;
    let x = |i: usize| left + (w - left - right) * i as f64 / (n - 1.0);
    let y = |v: f64| up + (h - up - down) * (1.0 - v / max);
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\"><text x=\"{left}\" y=\"15\" class=\"title\">{}</text>",
        esc(title),
        esc(title)
    );
    for k in 0..=2 {
        let v = max * k as f64 / 2.0;
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/><text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{v:.0}{unit}</text>",
            w - right,
            left - 4.0,
            y(v) + 4.0,
            y = y(v)
        );
    }
    for (i, label) in labels.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{}</text>",
            x(i),
            h - 8.0,
            esc(label)
        );
    }
    if values.iter().all(Option::is_none) {
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">not reported by this agent</text>",
            (left + w - right) / 2.0,
            h / 2.0
        );
    }
    let path: Vec<String> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x(i), y(v))))
        .collect();
    if path.len() > 1 {
        let _ = write!(
            svg,
            "<polyline points=\"{}\" class=\"line\"/>",
            path.join(" ")
        );
    }
    for (i, v) in values.iter().enumerate() {
        if let Some(v) = v {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" class=\"dot\"><title>{}: {v:.0}{unit}</title></circle>",
                x(i),
                y(*v),
                esc(labels.get(i).map_or("", String::as_str))
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// One call: a summary line, and when opened its waveform, timeline, player, transcript,
/// verdicts and metrics.
fn call(r: &RunResult, files: &CallFiles, opts: &HtmlOptions, index: usize) -> String {
    let mut out = String::new();
    let label = r.condition.label();
    let why = if r.outcome == Outcome::Passed {
        String::new()
    } else {
        r.why()
    };
    let short: String = why.chars().take(160).collect();
    let wave = files.dir.as_deref().and_then(waveform);
    let tl = files
        .dir
        .as_deref()
        .map(|d| timeline(d, r.metrics.duration_s * 1000.0));
    let _ = write!(
        out,
        "<details class=\"call {cls}\" id=\"call-{index}\" data-test=\"{t}\" data-condition=\"{c}\" data-run=\"{run}\" data-outcome=\"{o}\"",
        run = r.run,
        cls = outcome_class(r.outcome),
        t = esc(&r.test),
        c = esc(&label),
        o = outcome_class(r.outcome),
    );
    if let Some(w) = &wave {
        let wave = json!({"ms": w.caller.ms_per_point, "c": w.caller.peaks, "a": w.agent.peaks});
        let _ = write!(out, " data-wave='{}'", json_attr(&wave));
    }
    if let Some(tl) = &tl {
        let _ = write!(out, " data-tl='{}'", json_attr(tl));
    }
    let _ = write!(
        out,
        "><summary><span class=\"badge {cls}\">{word}</span> <b>{t}</b> <span class=\"cond\">{c}</span> <span class=\"run\">#{run}</span> <span class=\"why\">{why}</span></summary><div class=\"body\">",
        cls = outcome_class(r.outcome),
        word = outcome_word(r.outcome),
        t = esc(&r.test),
        c = esc(&label),
        run = r.run,
        why = esc(&short),
    );
    if !why.is_empty() {
        let _ = write!(out, "<p class=\"reasons\">{}</p>", esc(&why));
    }
    if let Some(p) = &r.panic {
        let _ = write!(
            out,
            "<p class=\"reasons\">panic at {}: {}</p>",
            esc(&p.location),
            esc(&p.message)
        );
    }
    match (&files.dir, &files.link) {
        (Some(dir), Some(link)) => {
            let src = if opts.embed_audio {
                embedded(dir).unwrap_or_else(|| format!("{link}/call.wav"))
            } else {
                format!("{link}/call.wav")
            };
            let _ = write!(
                out,
                "<div class=\"wave\"><canvas height=\"150\"></canvas></div><audio controls preload=\"none\" src=\"{}\"></audio> <a class=\"folder\" href=\"{}/\">call folder</a>",
                esc(&src),
                esc(link)
            );
        }
        _ => out.push_str("<p class=\"missing\">recording not found next to the results</p>"),
    }
    out.push_str("<div class=\"cols\"><ol class=\"transcript\">");
    for line in &r.transcript {
        let who = match line.speaker {
            Speaker::Caller => "caller",
            Speaker::Agent => "agent",
        };
        // What the caller heard as the turn played, where it differs from the whole turn.
        let heard = line.heard.as_ref().map_or(String::new(), |h| {
            format!(
                "<small class=\"heard\">the caller heard as it played: {}</small>",
                esc(h)
            )
        });
        let _ = write!(
            out,
            "<li class=\"{who}\" data-t=\"{:.2}\"><i>{}</i> <b>{who}</b> {}{heard}</li>",
            line.at_ms / 1000.0,
            clock(line.at_ms),
            esc(&line.text)
        );
    }
    out.push_str("</ol><div><table class=\"verdicts\"><tbody>");
    for (i, s) in r.steps.iter().enumerate() {
        let _ = write!(
            out,
            "<tr><td class=\"{}\">{}</td><th>step {} · {}</th><td>{}</td></tr>",
            verdict_class(s.verdict),
            verdict_word(s.verdict),
            i + 1,
            esc(&s.goal),
            esc(&s.justification)
        );
    }
    for e in &r.expectations {
        let _ = write!(
            out,
            "<tr><td class=\"{}\">{}</td><th>{}</th><td>{}</td></tr>",
            verdict_class(e.judgement.verdict),
            verdict_word(e.judgement.verdict),
            esc(&e.name),
            esc(&e.judgement.justification)
        );
    }
    out.push_str("</tbody></table><dl class=\"metrics\">");
    let m = &r.metrics;
    let opt = |v: Option<f64>, unit: &str| v.map_or("–".into(), |v| format!("{v:.0}{unit}"));
    for (k, v) in [
        ("latency p50", opt(m.latency_p50_ms, " ms")),
        ("latency p95", opt(m.latency_p95_ms, " ms")),
        ("latency max", opt(m.latency_max_ms, " ms")),
        ("agent turns", m.turns.to_string()),
        ("duration", format!("{:.1} s", m.duration_s)),
        ("dropouts", m.underruns.to_string()),
        ("hearing WER", opt(m.wer.map(|w| w * 100.0), "%")),
        (
            "hearing drift",
            opt(m.hearing_drift.map(|w| w * 100.0), "%"),
        ),
        ("caller answer p50", opt(m.reaction_p50_ms, " ms")),
        ("caller answer p95", opt(m.reaction_p95_ms, " ms")),
        ("caller late by", opt(m.reaction_late_max_ms, " ms")),
        ("voicesim's send slip", opt(m.send_slip_max_ms, " ms")),
        ("voicesim's stalls", opt(m.loop_stall_max_ms, " ms")),
        ("seed", format!("{:016x}", r.seed)),
    ] {
        let _ = write!(out, "<div><dt>{k}</dt><dd>{}</dd></div>", esc(&v));
    }
    // The conversation's shape, where it was measured from the recording (`voicesim analyze`).
    let db = |v: Option<f64>, unit: &str| v.map(|v| format!("{v:.1}{unit}"));
    for (k, v) in [
        ("overlap", m.overlap_ms.map(|v| format!("{v:.0} ms"))),
        ("caller cut-ins", m.caller_cut_ins.map(|n| n.to_string())),
        ("agent cut-ins", m.agent_cut_ins.map(|n| n.to_string())),
        (
            "yielded in p50",
            m.yield_p50_ms.map(|v| format!("{v:.0} ms")),
        ),
        (
            "longest silence",
            m.silence_max_ms.map(|v| format!("{v:.0} ms")),
        ),
        (
            "caller's share of talk",
            m.talk_ratio.map(|v| format!("{:.0}%", v * 100.0)),
        ),
        ("caller's speech", db(m.caller_speech_dbfs, " dBFS")),
        ("caller's noise", db(m.caller_noise_dbfs, " dBFS")),
        ("caller's SNR", db(m.caller_snr_db, " dB")),
        ("agent's speech", db(m.agent_speech_dbfs, " dBFS")),
    ] {
        if let Some(v) = v {
            let _ = write!(out, "<div><dt>{k}</dt><dd>{}</dd></div>", esc(&v));
        }
    }
    out.push_str("</dl></div></div></div></details>\n");
    out
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Met => "met",
        Verdict::NotMet => "not met",
        Verdict::NotJudged => "not judged",
    }
}

/// With a baseline: its verdict, new failures and fixes.
fn comparison(d: &Diff) -> String {
    let mut out = format!(
        "<section><h2>Compared with the baseline</h2><p class=\"{}\">{}</p>",
        if d.regressed() { "fail" } else { "pass" },
        esc(super::diff::text(d).lines().last().unwrap_or_default())
    );
    if !d.new_failures.is_empty() || !d.fixes.is_empty() {
        out.push_str("<ul class=\"changes\">");
        for (what, c) in d
            .new_failures
            .iter()
            .map(|c| ("new failure", c))
            .chain(d.fixes.iter().map(|c| ("fixed", c)))
        {
            let _ = write!(
                out,
                "<li><b>{what}</b> {} [{}] #{}: {}</li>",
                esc(&c.test),
                esc(&c.condition),
                c.run,
                esc(&c.why)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");
    out
}

/// The page for `results` of the folder `results_dir`, to be written in `page_dir`.
pub fn render(
    results: &[RunResult],
    results_dir: &Path,
    page_dir: &Path,
    baseline: Option<&Diff>,
    opts: &HtmlOptions,
) -> String {
    let suite = distinct(results.iter().map(|r| r.suite.as_str())).join(", ");
    // Failures first: errors, failures, not judged, then passes; each in run order.
    let rank = |o: Outcome| match o {
        Outcome::Error => 0,
        Outcome::Failed => 1,
        Outcome::NotJudged => 2,
        Outcome::Passed => 3,
    };
    // Then tests and conditions in the order they first appear, runs counting up.
    let tests = distinct(results.iter().map(|r| r.test.clone()));
    let conditions = distinct(results.iter().map(|r| r.condition.label()));
    let place = |list: &[String], k: String| list.iter().position(|x| *x == k);
    let mut order: Vec<&RunResult> = results.iter().collect();
    order.sort_by_cached_key(|r| {
        (
            rank(r.outcome),
            place(&tests, r.test.clone()),
            place(&conditions, r.condition.label()),
            r.run,
        )
    });
    let options = |values: &[String]| {
        values
            .iter()
            .map(|v| format!("<option>{}</option>", esc(v)))
            .collect::<String>()
    };
    let mut page = String::with_capacity(4096 + results.len() * 4096);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><title>voicesim: {s}</title><style>{STYLE}</style></head><body><header><h1>voicesim <span>{s}</span></h1>{head}</header><main>{matrix}",
        s = esc(&suite),
        head = header(results),
        // A run of staircases only has no fixed conditions to tabulate.
        matrix = if super::rows(results).is_empty() {
            String::new()
        } else {
            format!(
                "<section><h2>Tests × conditions</h2>{}</section>",
                matrix(results, baseline)
            )
        },
    );
    let sweep = sweep(results);
    if !sweep.is_empty() {
        let _ = write!(page, "<section><h2>Noise sweep</h2>{sweep}</section>");
    }
    if super::kpi::noisy(results) {
        let _ = write!(
            page,
            "<section><h2>Noise KPIs</h2>{}</section>",
            kpis(results)
        );
    }
    let thresholds = thresholds(results);
    if !thresholds.is_empty() {
        let _ = write!(
            page,
            "<section><h2>Task thresholds</h2>{thresholds}</section>"
        );
    }
    if let Some(load) = load(results_dir) {
        let _ = write!(
            page,
            "<section><h2>Load, second by second</h2>{load}</section>"
        );
    }
    if let Some(d) = baseline {
        page.push_str(&comparison(d));
    }
    let _ = write!(
        page,
        "<section><h2>Calls</h2><form class=\"filters\"><label>test <select name=\"test\"><option value=\"\">all</option>{}</select></label> <label>condition <select name=\"condition\"><option value=\"\">all</option>{}</select></label> <label>outcome <select name=\"outcome\"><option value=\"\">all</option><option value=\"err\">error</option><option value=\"fail\">failed</option><option value=\"nj\">not judged</option><option value=\"pass\">passed</option></select></label> <output></output></form>{LEGEND}<div id=\"calls\">",
        options(&tests),
        options(&conditions),
    );
    // Each call's section on its own core: with embedded audio, encoding the recordings is
    // most of a report's time (the demo's 17 calls: 1.8 s on one core, 0.9 s on two).
    use rayon::prelude::*;
    let sections: Vec<String> = order
        .par_iter()
        .enumerate()
        .map(|(i, r)| call(r, &call_files(results_dir, page_dir, r), opts, i))
        .collect();
    sections.iter().for_each(|s| page.push_str(s));
    let _ = writeln!(
        page,
        "</div></section></main><script>{SCRIPT}</script></body></html>"
    );
    page
}

/// Writes the page for the results in `results_dir` to `out` (default: its `report.html`).
pub fn write(
    results: &[RunResult],
    results_dir: &Path,
    out: &Path,
    baseline: Option<&Diff>,
    opts: &HtmlOptions,
) -> std::io::Result<()> {
    let page_dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let page = render(results, results_dir, page_dir, baseline, opts);
    let tmp = out.with_extension("html.tmp");
    std::fs::write(&tmp, page)?;
    std::fs::rename(tmp, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_links() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        let dir = tempfile::tempdir().expect("tmp");
        let calls = dir.path().join("calls/a b/clean/run-1");
        std::fs::create_dir_all(&calls).expect("mkdir");
        assert_eq!(relative(dir.path(), &calls), "calls/a%20b/clean/run-1");
        let page = dir.path().join("elsewhere");
        std::fs::create_dir_all(&page).expect("mkdir");
        assert_eq!(relative(&page, &calls), "../calls/a%20b/clean/run-1");
        assert_eq!(clock(61_250.0), "1:01.2");
    }

    #[test]
    fn a_call_shows_what_the_caller_heard_where_it_differs_and_its_hearing_drift() {
        use crate::record::{Line, Speaker};
        let suite = crate::suite::Suite::parse(
            "name: s\ntests:\n  - name: t\n    steps: [{goal: g, static_utterance: hi}]\n",
            "s.yaml",
            Path::new("."),
        )
        .expect("suite");
        let clean = crate::suite::Condition {
            profile: "clean".into(),
            snr: None,
        };
        let mut r = RunResult::new("s", &suite.tests[0], &clean, 1, 7);
        let line = |text: &str, heard: Option<&str>| Line {
            speaker: Speaker::Agent,
            text: text.into(),
            at_ms: 0.0,
            heard: heard.map(String::from),
        };
        r.transcript = vec![
            line(
                "Order 4521 has been shipped.",
                Some("Order 4521 has <shit>."),
            ),
            line("Goodbye.", None),
        ];
        r.metrics.hearing_drift = Some(0.2);
        let files = CallFiles {
            dir: None,
            link: None,
        };
        let html = call(&r, &files, &HtmlOptions::default(), 0);
        assert_eq!(html.matches("class=\"heard\"").count(), 1, "{html}");
        assert!(
            html.contains("as it played: Order 4521 has &lt;shit&gt;."),
            "{html}"
        );
        assert!(
            html.contains("<dt>hearing drift</dt><dd>20%</dd>"),
            "{html}"
        );
    }
}
