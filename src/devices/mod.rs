//! The sound card, behind the `devices` feature: what devices there are, the microphone
//! captured with cpal ([`Capture`]), clips played with rodio ([`Speaker`]). Everything at the
//! boundary is a [`Clip`] or plain samples, so the rest of voicesim never sees a device.
//!
//! ```no_run
//! use voicesim::devices::{Capture, Speaker};
//! use voicesim::audio::Clip;
//!
//! let speaker = Speaker::open(None)?;
//! speaker.play(&Clip::new(vec![0.0; 16_000], 16_000));
//! let mut mic = Capture::open(None)?;
//! let heard = mic.record(std::time::Duration::from_secs(1), |_| {}).map_err(|(_, e)| e)?;
//! println!("{} samples at {} Hz from {}", heard.len(), heard.rate, mic.device());
//! # Ok::<(), voicesim::devices::DeviceError>(())
//! ```

use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::audio::Clip;

/// A device could not be used; the message names it and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "no {direction} device{}: connect one (or start the sound server), and see \
         `voicesim devices` for what there is",
        name.as_ref().map(|n| format!(" named {n:?}")).unwrap_or_default()
    )]
    Missing {
        direction: &'static str,
        name: Option<String>,
    },
    #[error("{device}: {message}; {fix}")]
    Failed {
        device: String,
        message: String,
        fix: &'static str,
    },
}

/// A device that takes or delivers nothing for this long has failed.
const STALLED: Duration = Duration::from_secs(3);

const BUSY_FIX: &str = "close what else is using it, or pick another with --device";

fn failed(device: &str, error: impl std::fmt::Display) -> DeviceError {
    let message = error.to_string();
    let lower = message.to_lowercase();
    let fix = if lower.contains("busy") {
        BUSY_FIX
    } else if lower.contains("not available") || lower.contains("disconnected") {
        "reconnect it, or pick another with --device (see `voicesim devices`)"
    } else if lower.contains("format") || lower.contains("config") || lower.contains("support") {
        "the device does not take the format asked for; pick another with --device"
    } else {
        "see `voicesim devices` for the devices and their formats"
    };
    DeviceError::Failed {
        device: device.to_string(),
        message,
        fix,
    }
}

/// A device's default format in one direction.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Format {
    pub rate: u32,
    pub channels: u16,
    pub sample: String,
}

/// One device as `voicesim devices` lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeviceInfo {
    /// What `--device` takes (ALSA's PCM name on Linux: `default`, `pulse`, `hw:0,0` …).
    pub name: String,
    pub description: String,
    pub input: Option<Format>,
    pub output: Option<Format>,
    pub default_input: bool,
    pub default_output: bool,
}

/// A device's short, stable name (its id on the host), else its description.
fn name_of(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.id().to_string())
        .unwrap_or_else(|_| device.to_string())
}

fn format(config: &cpal::SupportedStreamConfig) -> Format {
    Format {
        rate: config.sample_rate(),
        channels: config.channels(),
        sample: config.sample_format().to_string(),
    }
}

/// Every device of the default host, with its default formats.
pub fn list() -> Result<Vec<DeviceInfo>, DeviceError> {
    let host = cpal::default_host();
    let (default_in, default_out) = (
        host.default_input_device().as_ref().map(name_of),
        host.default_output_device().as_ref().map(name_of),
    );
    let devices = host.devices().map_err(|e| failed(host.id().name(), e))?;
    Ok(devices
        .map(|d| {
            let name = name_of(&d);
            DeviceInfo {
                description: d.to_string(),
                input: d.default_input_config().ok().as_ref().map(format),
                output: d.default_output_config().ok().as_ref().map(format),
                default_input: default_in.as_ref() == Some(&name),
                default_output: default_out.as_ref() == Some(&name),
                name,
            }
        })
        // Plugins that can neither capture nor play are not devices to a user.
        .filter(|d: &DeviceInfo| d.input.is_some() || d.output.is_some())
        .collect())
}

/// The device named `name` (or the default) that can capture (`input`) or play.
fn device(name: Option<&str>, input: bool) -> Result<cpal::Device, DeviceError> {
    let host = cpal::default_host();
    let direction = if input { "input" } else { "output" };
    let missing = || DeviceError::Missing {
        direction,
        name: name.map(str::to_string),
    };
    match name {
        None if input => host.default_input_device().ok_or_else(missing),
        None => host.default_output_device().ok_or_else(missing),
        Some(wanted) => {
            let mut devices = if input {
                host.input_devices().map(|d| d.collect::<Vec<_>>())
            } else {
                host.output_devices().map(|d| d.collect::<Vec<_>>())
            }
            .map_err(|e| failed(wanted, e))?;
            let at = devices
                .iter()
                .position(|d| name_of(d) == wanted || d.to_string() == wanted);
            at.map(|i| devices.swap_remove(i)).ok_or_else(missing)
        }
    }
}

/// What is wrong with a recording, each with its fix.
pub fn problems(clip: &Clip) -> Vec<String> {
    let mut found = Vec::new();
    if clip.is_empty() {
        return vec!["the recording is empty".into()];
    }
    let clipped = clip.samples.iter().filter(|s| s.abs() >= 0.999).count();
    if clipped as f64 / clip.len() as f64 > 0.001 {
        found.push(format!(
            "{clipped} samples are clipped (at full scale): turn the input gain down and record again"
        ));
    }
    let dbfs = clip.rms_dbfs();
    if dbfs < -70.0 {
        found.push(format!(
            "the recording is silent ({dbfs:.0} dBFS): is the microphone muted, or the wrong \
             device? (see `voicesim devices`, --device)"
        ));
    }
    let mean = clip.samples.iter().map(|&s| f64::from(s)).sum::<f64>() / clip.len() as f64;
    if mean.abs() > 0.01 {
        found.push(format!(
            "a DC offset of {mean:.3}: the input has a bias (a faulty or misconfigured \
             microphone); a high-pass filter or another input fixes it"
        ));
    }
    found
}

/// The SNR of a reading against the room, as voicesim's SNR is defined (the voice's RMS
/// without its pauses against the noise's RMS): the reading's 20 ms frames well above the
/// room (10 dB) are the voice; the room's power is taken out of them.
pub fn calibrated_snr(reading: &Clip, room: &Clip) -> Option<f64> {
    let noise = crate::audio::level::rms(&room.samples).powi(2);
    let frame = crate::audio::Frame::samples_per_frame(reading.rate);
    let voiced: Vec<f64> = reading
        .samples
        .chunks(frame)
        .map(|f| crate::audio::level::rms(f).powi(2))
        .filter(|p| *p > noise * 10.0)
        .collect();
    if voiced.is_empty() || noise <= 0.0 {
        return None;
    }
    let voice = voiced.iter().sum::<f64>() / voiced.len() as f64 - noise;
    (voice > 0.0).then(|| 10.0 * (voice / noise).log10())
}

/// The microphone: a running input stream handing over mono samples at the device's rate.
pub struct Capture {
    _stream: cpal::Stream,
    pieces: mpsc::Receiver<Result<Vec<f32>, String>>,
    rate: u32,
    device: String,
}

impl Capture {
    /// Opens `name` (or the default input) in its default format and starts capturing.
    pub fn open(name: Option<&str>) -> Result<Capture, DeviceError> {
        let device = device(name, true)?;
        let label = name_of(&device);
        let config = device
            .default_input_config()
            .map_err(|e| failed(&label, e))?;
        let (tx, pieces) = mpsc::channel();
        let channels = usize::from(config.channels().max(1));
        let errors = tx.clone();
        let on_error = move |e: cpal::Error| {
            let _ = errors.send(Err(e.to_string()));
        };
        let timeout = Some(Duration::from_secs(5));
        let stream_config = config.config();
        // Mono by averaging the channels, as everything read from a file is.
        macro_rules! stream {
            ($t:ty) => {
                device.build_input_stream::<$t, _, _>(
                    stream_config,
                    move |data: &[$t], _| {
                        let mono = data
                            .chunks(channels)
                            .map(|frame| {
                                frame
                                    .iter()
                                    .map(|s| <f32 as cpal::FromSample<$t>>::from_sample_(*s))
                                    .sum::<f32>()
                                    / channels as f32
                            })
                            .collect();
                        let _ = tx.send(Ok(mono));
                    },
                    on_error,
                    timeout,
                )
            };
        }
        let stream = match config.sample_format() {
            cpal::SampleFormat::F32 => stream!(f32),
            cpal::SampleFormat::I16 => stream!(i16),
            cpal::SampleFormat::I32 => stream!(i32),
            cpal::SampleFormat::U16 => stream!(u16),
            cpal::SampleFormat::U8 => stream!(u8),
            other => {
                return Err(DeviceError::Failed {
                    device: label,
                    message: format!("captures {other} samples, which voicesim does not read"),
                    fix: "pick another device with --device",
                })
            }
        }
        .map_err(|e| failed(&label, e))?;
        stream.play().map_err(|e| failed(&label, e))?;
        Ok(Capture {
            _stream: stream,
            pieces,
            rate: config.sample_rate(),
            device: label,
        })
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    /// The samples captured since the last call, waiting up to `wait` for the first; an
    /// error once the device failed (unplugged, taken away).
    pub fn take(&mut self, wait: Duration) -> Result<Vec<f32>, DeviceError> {
        let mut out = Vec::new();
        let mut next = self.pieces.recv_timeout(wait).ok();
        while let Some(piece) = next {
            match piece {
                Ok(samples) => out.extend(samples),
                Err(message) => {
                    return Err(DeviceError::Failed {
                        device: self.device.clone(),
                        message,
                        fix: "reconnect it and record again",
                    })
                }
            }
            next = self.pieces.try_recv().ok();
        }
        Ok(out)
    }

    /// Captures `length` of audio; `progress` sees each piece as it comes (for a meter).
    /// A device that fails mid-way ends the recording with what was captured and the error.
    pub fn record(
        &mut self,
        length: Duration,
        mut progress: impl FnMut(&[f32]),
    ) -> Result<Clip, (Clip, DeviceError)> {
        let want = (length.as_secs_f64() * f64::from(self.rate)).round() as usize;
        let mut samples = Vec::with_capacity(want);
        let mut last_audio = Instant::now();
        while samples.len() < want {
            match self.take(Duration::from_millis(100)) {
                Ok(piece) if piece.is_empty() => {}
                Ok(piece) => {
                    last_audio = Instant::now();
                    progress(&piece);
                    samples.extend(piece);
                }
                Err(e) => {
                    samples.truncate(want);
                    return Err((Clip::new(samples, self.rate), e));
                }
            }
            // A device that stops delivering audio is as good as gone.
            if last_audio.elapsed() > STALLED {
                return Err((
                    Clip::new(samples, self.rate),
                    DeviceError::Failed {
                        device: self.device.clone(),
                        message: format!("delivered no audio for {} s", STALLED.as_secs()),
                        fix: "is it still connected, or taken by another program? record again",
                    },
                ));
            }
        }
        samples.truncate(want);
        Ok(Clip::new(samples, self.rate))
    }
}

/// The speakers: clips queued and played back to back.
pub struct Speaker {
    _sink: rodio::MixerDeviceSink,
    player: rodio::Player,
    device: String,
    /// The last playback position seen to move, and when: a device that stops taking
    /// samples leaves rodio waiting forever, so progress is watched.
    moved: std::cell::Cell<(Duration, Instant)>,
    broke: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl Speaker {
    /// Opens `name` (or the default output).
    pub fn open(name: Option<&str>) -> Result<Speaker, DeviceError> {
        let device = device(name, false)?;
        let label = name_of(&device);
        // The stream's first error is kept for the message (rodio would print each one).
        let broke = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let first = std::sync::Arc::clone(&broke);
        let mut sink = rodio::DeviceSinkBuilder::from_device(device)
            .and_then(|b| {
                b.with_error_callback(move |e| {
                    if let Ok(mut first) = first.lock() {
                        first.get_or_insert_with(|| e.to_string());
                    }
                })
                .open_stream()
            })
            .map_err(|e| failed(&label, e))?;
        sink.log_on_drop(false);
        let player = rodio::Player::connect_new(sink.mixer());
        Ok(Speaker {
            _sink: sink,
            player,
            device: label,
            moved: std::cell::Cell::new((Duration::ZERO, Instant::now())),
            broke,
        })
    }

    pub fn device(&self) -> &str {
        &self.device
    }

    /// Queues a mono clip after what is already queued.
    pub fn play(&self, clip: &Clip) {
        self.play_channels(&clip.samples, 1, clip.rate);
    }

    /// Queues interleaved samples of `channels` channels.
    pub fn play_channels(&self, samples: &[f32], channels: u16, rate: u32) {
        let (Some(channels), Some(rate)) = (
            std::num::NonZero::new(channels),
            std::num::NonZero::new(rate),
        ) else {
            return;
        };
        self.player.append(rodio::buffer::SamplesBuffer::new(
            channels,
            rate,
            samples.to_vec(),
        ));
    }

    /// Clips still queued (the one playing included).
    pub fn queued(&self) -> usize {
        self.player.len()
    }

    /// How far into what was queued first playback is.
    pub fn position(&self) -> Duration {
        self.player.get_pos()
    }

    pub fn pause(&self) {
        self.player.pause();
    }

    pub fn resume(&self) {
        self.player.play();
    }

    pub fn is_paused(&self) -> bool {
        self.player.is_paused()
    }

    /// Jumps to `to` in the clip playing.
    pub fn seek(&self, to: Duration) {
        let _ = self.player.try_seek(to);
    }

    /// Whether something is still playing; an error once playback has not moved for
    /// [`STALLED`] while not paused.
    pub fn playing(&self) -> Result<bool, DeviceError> {
        if self.player.empty() {
            return Ok(false);
        }
        let (last, since) = self.moved.get();
        let now = self.player.get_pos();
        if now != last || self.player.is_paused() {
            self.moved.set((now, Instant::now()));
        } else if since.elapsed() > STALLED {
            return Err(DeviceError::Failed {
                device: self.device.clone(),
                message: format!(
                    "played nothing for {} s{}",
                    STALLED.as_secs(),
                    self.broke
                        .lock()
                        .ok()
                        .and_then(|e| e.clone())
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
                fix: "is it still connected, or taken by another program? play again",
            });
        }
        Ok(true)
    }

    /// Blocks until everything queued has played, or the device stalls.
    pub fn finish(&self) -> Result<(), DeviceError> {
        while self.playing()? {
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}
