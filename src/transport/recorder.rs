//! Recording calls to disk while they run. The call loop must never wait on the disk (a
//! kernel flushing dirty pages can hold a `write` for a long time, and every call sharing the
//! worker thread would go late), so a [`Deck`] thread does the writing: calls hand it a
//! quarter second of samples at a time and their event lines as they happen, and what is left
//! to write when a call ends ([`Deck::run`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use tokio::sync::oneshot;

use super::event::CallEvent;
use crate::audio::{AudioError, Tape, Taped};
use crate::guard::Panic;

/// The writer thread; cloned into every call that records through it.
#[derive(Debug, Clone)]
pub struct Deck {
    ops: mpsc::Sender<Op>,
    ids: Arc<AtomicU64>,
}

enum Op {
    Load(u64, PathBuf, u32),
    Samples(u64, Vec<f32>, Vec<f32>),
    Event(u64, Vec<u8>),
    Finish(u64, oneshot::Sender<Result<Taped, AudioError>>),
    CloseLog(u64, oneshot::Sender<()>),
    Run(Box<dyn FnOnce() + Send>),
}

impl Deck {
    /// Starts the thread; it ends when the last clone is dropped.
    pub fn start() -> Deck {
        let (ops, rx) = mpsc::channel();
        let _ = std::thread::Builder::new()
            .name("voicesim-deck".into())
            .spawn(move || {
                background();
                write_all(rx)
            });
        Deck {
            ops,
            ids: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A call's recording into `wav` (stereo, `rate`), its event log beside it in
    /// `events.jsonl`. The deck creates the files too (a busy disk can take its time creating
    /// a thousand): a folder that cannot be written is the recording's error at its finish.
    pub fn record(&self, wav: PathBuf, rate: u32) -> Recording {
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        self.send(Op::Load(id, wav, rate));
        Recording {
            id,
            deck: self.clone(),
            caller: Vec::new(),
            agent: Vec::new(),
            chunk: rate as usize / 4,
        }
    }

    /// Runs `job` on the deck's thread, behind the writes already handed to it, at the
    /// priority that yields to the calls: a call's files written when it ends (its record,
    /// its result) make no other call's frame late.
    pub async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Panic> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Run(Box::new(move || {
            let _ = tx.send(crate::guard::catch(job));
        })));
        rx.await.unwrap_or_else(|_| {
            Err(Panic {
                message: "the recording thread stopped".into(),
                location: file!().into(),
            })
        })
    }

    fn send(&self, op: Op) {
        // The thread only ends when every sender is gone, so this cannot fail.
        let _ = self.ops.send(op);
    }
}

/// The deck yields the cores to the calls: opening a thousand calls' files at once takes a
/// core of file-system work, which at the same priority as the call loop made frames late
/// (measured with `cargo bench --bench paced`). Linux's nice value is the calling thread's own.
fn background() {
    #[cfg(target_os = "linux")]
    let _ = rustix::process::nice(19);
}

/// One call's recording: samples gathered a quarter second at a time, then written by the deck.
pub struct Recording {
    id: u64,
    deck: Deck,
    caller: Vec<f32>,
    agent: Vec<f32>,
    chunk: usize,
}

impl Recording {
    /// The next stretch of both channels (the shorter is padded with silence when written).
    pub fn append(&mut self, caller: &[f32], agent: &[f32]) {
        self.caller.extend_from_slice(caller);
        self.agent.extend_from_slice(agent);
        if self.caller.len().max(self.agent.len()) >= self.chunk {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let (mut caller, mut agent) = (
            std::mem::take(&mut self.caller),
            std::mem::take(&mut self.agent),
        );
        let n = caller.len().max(agent.len());
        caller.resize(n, 0.0);
        agent.resize(n, 0.0);
        self.deck.send(Op::Samples(self.id, caller, agent));
    }

    /// Where this call's events go.
    pub fn log(&self) -> EventLog {
        EventLog {
            id: self.id,
            deck: self.deck.clone(),
        }
    }

    /// Writes what is left and closes the WAV; what was taped, or the first write error.
    pub async fn finish(mut self) -> Result<Taped, AudioError> {
        self.flush();
        let (tx, rx) = oneshot::channel();
        self.deck.send(Op::Finish(self.id, tx));
        rx.await.unwrap_or_else(|_| {
            Err(AudioError::Write {
                path: PathBuf::from("<recording>"),
                reason: "the recording thread stopped".into(),
            })
        })
    }
}

/// A call's event log, a line as each event happens.
pub struct EventLog {
    id: u64,
    deck: Deck,
}

impl EventLog {
    pub fn write(&self, event: &CallEvent) {
        if let Ok(mut line) = serde_json::to_vec(event) {
            line.push(b'\n');
            self.deck.send(Op::Event(self.id, line));
        }
    }

    /// Returns once every line is in the file.
    pub async fn close(self) {
        let (tx, rx) = oneshot::channel();
        self.deck.send(Op::CloseLog(self.id, tx));
        let _ = rx.await;
    }
}

/// The deck's thread: every call's files, written in the order their parts came.
fn write_all(ops: mpsc::Receiver<Op>) {
    // A tape that could not be made holds why until its finish.
    let mut tapes: HashMap<u64, Result<(Tape, Option<AudioError>), AudioError>> = HashMap::new();
    let mut logs: HashMap<u64, BufWriter<File>> = HashMap::new();
    while let Ok(op) = ops.recv() {
        match op {
            Op::Load(id, wav, rate) => {
                let log_path = wav.with_file_name("events.jsonl");
                let tape = Tape::create(&wav, rate);
                let log = File::create(&log_path).map_err(|e| AudioError::Write {
                    path: log_path,
                    reason: e.to_string(),
                });
                match (tape, log) {
                    (Ok(tape), Ok(log)) => {
                        tapes.insert(id, Ok((tape, None)));
                        logs.insert(id, BufWriter::new(log));
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tapes.insert(id, Err(e));
                    }
                }
            }
            Op::Samples(id, caller, agent) => {
                if let Some(Ok((tape, failed @ None))) = tapes.get_mut(&id) {
                    *failed = tape.append(&caller, &agent).err();
                }
            }
            Op::Event(id, line) => {
                // A line lost to a full disk is missing from the log; the call goes on.
                if let Some(log) = logs.get_mut(&id) {
                    let _ = log.write_all(&line);
                }
            }
            Op::Finish(id, done) => {
                if let Some(tape) = tapes.remove(&id) {
                    let _ = done.send(match tape {
                        Ok((tape, None)) => tape.finish(),
                        Ok((_, Some(e))) | Err(e) => Err(e),
                    });
                }
            }
            Op::CloseLog(id, done) => {
                if let Some(mut log) = logs.remove(&id) {
                    let _ = log.flush();
                }
                let _ = done.send(());
            }
            Op::Run(job) => job(),
        }
    }
}

#[cfg(test)]
mod jobs {
    use super::*;

    #[tokio::test]
    async fn a_job_runs_on_the_deck_after_the_writes_before_it_and_a_panic_is_told() {
        let deck = Deck::start();
        let dir = tempfile::tempdir().unwrap();
        let mut recording = deck.record(dir.path().join("call.wav"), 8_000);
        recording.append(&[0.5; 2_000], &[0.0; 2_000]);
        let wav = dir.path().join("call.wav");
        // The deck made the recording's file before it ran the job handed to it after.
        assert!(deck.run(move || wav.exists()).await.unwrap());
        let thread = deck
            .run(|| std::thread::current().name().map(String::from))
            .await;
        assert_eq!(thread.unwrap().as_deref(), Some("voicesim-deck"));
        #[allow(clippy::panic, reason = "the panic the deck must survive")]
        let broken = deck.run(|| panic!("a broken job")).await;
        assert!(broken.is_err_and(|p| p.message.contains("a broken job")));
        // ... and the deck goes on.
        assert_eq!(deck.run(|| 7).await.unwrap(), 7);
        recording.finish().await.unwrap();
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::path::Path;

    /// The nice value in a thread's /proc `stat` (field 19, the 17th after the command).
    fn nice_in(task: &Path) -> Option<i64> {
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(16)?
            .parse()
            .ok()
    }

    /// The nice value of this process's thread named `name`.
    fn nice_of(name: &str) -> Option<i64> {
        std::fs::read_dir("/proc/self/task")
            .ok()?
            .flatten()
            .find_map(|task| {
                let comm = std::fs::read_to_string(task.path().join("comm")).ok()?;
                (comm.trim() == name).then(|| nice_in(&task.path()))?
            })
    }

    #[test]
    fn the_deck_runs_at_the_lowest_priority_and_the_calls_do_not() {
        let own = nice_in(Path::new("/proc/thread-self"));
        let deck = Deck::start();
        // The thread lowers itself as it starts: give it the moment.
        let mut nice = None;
        for _ in 0..100 {
            nice = nice_of("voicesim-deck").filter(|&n| n == 19);
            if nice.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(nice, Some(19), "the deck thread's nice value");
        assert!(
            own.is_some_and(|n| n < 19),
            "this thread's nice value: {own:?}"
        );
        assert_eq!(
            nice_in(Path::new("/proc/thread-self")),
            own,
            "the thread that started the deck keeps its priority"
        );
        drop(deck);
    }
}
