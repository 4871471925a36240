//! Wire formats checked message by message against the documented examples
//! (../shared/PROTOCOLS.md, from Twilio's Media Streams documentation).

use serde_json::{json, Value};
use voicesim::transport::twilio::{AgentMessage, TwilioStream};

fn parse(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

fn is_sid(s: &Value, prefix: &str) -> bool {
    let s = s.as_str().unwrap();
    s.len() == 34 && s.starts_with(prefix) && s[2..].chars().all(|c| c.is_ascii_hexdigit())
}

#[test]
fn twilio_call_messages_have_the_documented_shapes() {
    let params = [
        ("testMode".to_string(), "noise".to_string()),
        ("customer".to_string(), "42".to_string()),
    ]
    .into();
    let mut t = TwilioStream::new(1, params);
    let (s, a, c) = (
        t.stream_sid.clone(),
        t.account_sid.clone(),
        t.call_sid.clone(),
    );
    assert!(is_sid(&json!(s), "MZ") && is_sid(&json!(a), "AC") && is_sid(&json!(c), "CA"));

    assert_eq!(
        parse(&t.connected()),
        json!({"event":"connected","protocol":"Call","version":"1.0.0"})
    );
    assert_eq!(
        parse(&t.start()),
        json!({"event":"start","sequenceNumber":"1","streamSid":s,"start":{"streamSid":s,"accountSid":a,"callSid":c,
            "tracks":["inbound"],"customParameters":{"testMode":"noise","customer":"42"},
            "mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}}})
    );
    assert_eq!(
        parse(&t.media(0, &[0xFF; 160])),
        json!({"event":"media","sequenceNumber":"2","streamSid":s,"media":{"track":"inbound","chunk":"1","timestamp":"0",
            "payload": "/".repeat(212) + "/w=="}})
    );
    let second = parse(&t.media(20, &[0x7F, 0x00]));
    assert_eq!(second["sequenceNumber"], "3");
    assert_eq!(second["media"]["chunk"], "2");
    assert_eq!(second["media"]["timestamp"], "20");
    assert_eq!(second["media"]["payload"], "fwA=");
    assert_eq!(
        parse(&t.dtmf('1')),
        json!({"event":"dtmf","sequenceNumber":"4","streamSid":s,"dtmf":{"track":"inbound_track","digit":"1"}})
    );
    assert_eq!(
        parse(&t.mark("greeting-done")),
        json!({"event":"mark","sequenceNumber":"5","streamSid":s,"mark":{"name":"greeting-done"}})
    );
    assert_eq!(
        parse(&t.stop()),
        json!({"event":"stop","sequenceNumber":"6","streamSid":s,"stop":{"accountSid":a,"callSid":c}})
    );
}

#[test]
fn twilio_ids_follow_the_seed() {
    let ids = |seed| {
        let t = TwilioStream::new(seed, Default::default());
        (t.stream_sid, t.account_sid, t.call_sid)
    };
    assert_eq!(ids(3), ids(3));
    assert_ne!(ids(3), ids(4));
}

#[test]
fn twilio_agent_messages_are_read_and_bad_ones_rejected() {
    assert_eq!(
        TwilioStream::parse(r#"{"event":"media","streamSid":"MZ1","media":{"payload":"fwA="}}"#)
            .unwrap(),
        AgentMessage::Media {
            payload: vec![0x7F, 0x00]
        }
    );
    assert_eq!(
        TwilioStream::parse(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"m1"}}"#).unwrap(),
        AgentMessage::Mark { name: "m1".into() }
    );
    assert_eq!(
        TwilioStream::parse(r#"{"event":"clear","streamSid":"MZ1"}"#).unwrap(),
        AgentMessage::Clear
    );
    for (bad, says) in [
        ("not json", "not JSON"),
        (r#"{"streamSid":"MZ1"}"#, "without \"event\""),
        (r#"{"event":"media","media":{}}"#, "media.payload"),
        (r#"{"event":"media","media":{"payload":"%%%"}}"#, "base64"),
        (r#"{"event":"mark","mark":{}}"#, "mark.name"),
        (r#"{"event":"hangup"}"#, "unknown event"),
    ] {
        let err = TwilioStream::parse(bad).unwrap_err().to_string();
        assert!(
            err.starts_with("twilio: ") && err.contains(says),
            "{bad}: {err}"
        );
    }
}

mod openai_realtime {
    use serde_json::json;
    use voicesim::audio::Encoding;
    use voicesim::transport::openai_realtime::{self as rt, ServerEvent};

    fn parse(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn client_events_have_the_documented_shapes() {
        assert_eq!(
            parse(&rt::session_update(Encoding::Pcm16, 24_000, false)),
            json!({"type":"session.update","session":{"type":"realtime","audio":{
                "input":{"format":{"type":"audio/pcm","rate":24000},"turn_detection":null},
                "output":{"format":{"type":"audio/pcm","rate":24000}}}}})
        );
        let mulaw = parse(&rt::session_update(Encoding::Mulaw, 8_000, true));
        assert_eq!(
            mulaw["session"]["audio"]["input"]["format"],
            json!({"type":"audio/pcmu"})
        );
        assert_eq!(
            mulaw["session"]["audio"]["input"]["turn_detection"],
            json!({"type":"server_vad"})
        );
        assert_eq!(
            parse(&rt::append(&[0, 1, 2])),
            json!({"type":"input_audio_buffer.append","audio":"AAEC"})
        );
        assert_eq!(
            parse(&rt::commit()),
            json!({"type":"input_audio_buffer.commit"})
        );
        assert_eq!(
            parse(&rt::response_create()),
            json!({"type":"response.create"})
        );
        assert_eq!(
            parse(&rt::response_cancel()),
            json!({"type":"response.cancel"})
        );
        assert_eq!(
            parse(&rt::truncate("item_1", 1500)),
            json!({"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":1500})
        );
    }

    #[test]
    fn server_events_are_read_under_both_generations_of_names() {
        for name in ["response.output_audio.delta", "response.audio.delta"] {
            let e =
                rt::parse(&json!({"type": name, "item_id": "item_9", "delta": "AAEC"}).to_string())
                    .unwrap();
            assert_eq!(
                e,
                ServerEvent::AudioDelta {
                    item_id: Some("item_9".into()),
                    audio: vec![0, 1, 2]
                }
            );
        }
        for name in [
            "response.output_audio_transcript.done",
            "response.audio_transcript.done",
        ] {
            let e = rt::parse(&json!({"type": name, "transcript": "Hello!"}).to_string()).unwrap();
            assert_eq!(
                e,
                ServerEvent::TranscriptDone {
                    transcript: "Hello!".into()
                }
            );
        }
        assert_eq!(
            rt::parse(r#"{"type":"response.done","response":{}}"#).unwrap(),
            ServerEvent::ResponseDone
        );
        // The same name in both generations; the agent's hearing of the caller.
        assert_eq!(
            rt::parse(r#"{"type":"conversation.item.input_audio_transcription.completed","event_id":"e1","item_id":"item_3","content_index":0,"transcript":"Order 4521."}"#).unwrap(),
            ServerEvent::InputTranscript {
                transcript: "Order 4521.".into()
            }
        );
        assert_eq!(
            rt::parse(r#"{"type":"input_audio_buffer.speech_started"}"#).unwrap(),
            ServerEvent::SpeechStarted
        );
        assert_eq!(
            rt::parse(r#"{"type":"error","error":{"message":"bad audio"}}"#).unwrap(),
            ServerEvent::Error {
                message: "bad audio".into()
            }
        );
        assert_eq!(
            rt::parse(r#"{"type":"rate_limits.updated"}"#).unwrap(),
            ServerEvent::Other {
                kind: "rate_limits.updated".into()
            }
        );
        for bad in [
            "[",
            r#"{"delta":"x"}"#,
            r#"{"type":"response.audio.delta"}"#,
            r#"{"type":"response.audio.delta","delta":"%%"}"#,
        ] {
            assert!(
                rt::parse(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("openai-realtime: "),
                "{bad}"
            );
        }
    }
}

mod ear {
    use voicesim::transport::ear::{Ear, EarEvent};

    const RATE: u32 = 8_000;

    fn ms(n: f64) -> Vec<f32> {
        vec![0.25; (n * RATE as f64 / 1000.0) as usize]
    }

    #[test]
    fn audio_sent_faster_than_real_time_plays_back_to_back() {
        let mut ear = Ear::new(RATE, 700.0);
        // Three 500 ms chunks arrive within 30 ms of each other.
        for (i, at) in [1000.0, 1010.0, 1030.0].into_iter().enumerate() {
            ear.hear(at, &ms(500.0));
            assert!(ear.is_playing(at), "chunk {i}");
        }
        assert_eq!(
            ear.advance(1100.0),
            vec![EarEvent::AgentStarted { at_ms: 1000.0 }]
        );
        // Nothing new for 150 ms: the caller knows 1.32 s ahead when the voice will stop.
        assert_eq!(
            ear.advance(1180.0),
            vec![EarEvent::Quiet {
                spoke_until_ms: 2500.0,
                at_ms: 1180.0
            }]
        );
        assert!(ear.is_playing(2499.0) && !ear.is_playing(2500.0));
        assert_eq!(
            ear.advance(3199.0),
            vec![],
            "still inside the end-of-turn gap"
        );
        assert_eq!(
            ear.advance(3200.0),
            vec![EarEvent::TurnEnded {
                spoke_until_ms: 2500.0,
                at_ms: 3200.0
            }]
        );
        let rec = ear.recording(4000.0);
        assert_eq!(rec.len(), 32_000);
        assert!(
            rec.samples[..8000].iter().all(|&s| s == 0.0),
            "silence before the agent spoke"
        );
        assert!(
            rec.samples[8000..20_000].iter().all(|&s| s == 0.25),
            "1.5 s of agent audio from 1 s"
        );
        assert!(rec.samples[20_000..].iter().all(|&s| s == 0.0));
    }

    #[test]
    fn a_pause_shorter_than_the_gap_is_one_turn_and_a_longer_one_is_two() {
        let mut ear = Ear::new(RATE, 700.0);
        ear.hear(0.0, &ms(400.0));
        // 500 ms of quiet after 400 ms of audio: still the same turn.
        assert_eq!(
            ear.advance(900.0),
            vec![
                EarEvent::AgentStarted { at_ms: 0.0 },
                EarEvent::Quiet {
                    spoke_until_ms: 400.0,
                    at_ms: 150.0
                }
            ]
        );
        ear.hear(900.0, &ms(400.0));
        assert_eq!(
            ear.advance(5000.0),
            vec![
                EarEvent::Quiet {
                    spoke_until_ms: 1300.0,
                    at_ms: 1050.0
                },
                EarEvent::TurnEnded {
                    spoke_until_ms: 1300.0,
                    at_ms: 2000.0
                }
            ]
        );
        ear.hear(6000.0, &ms(200.0));
        // A 100 ms hole is a dropout; 20 ms is jitter.
        ear.hear(6300.0, &ms(100.0));
        ear.hear(6420.0, &ms(100.0));
        assert_eq!(
            ear.advance(8000.0),
            vec![
                EarEvent::AgentStarted { at_ms: 6000.0 },
                // Each hole in the arrivals of 150 ms or more is a moment the turn may be
                // over; audio that comes 120 ms apart makes the hole to wait for 180 ms.
                EarEvent::Quiet {
                    spoke_until_ms: 6200.0,
                    at_ms: 6150.0
                },
                EarEvent::Underrun {
                    at_ms: 6200.0,
                    gap_ms: 100.0
                },
                EarEvent::Quiet {
                    spoke_until_ms: 6520.0,
                    at_ms: 6600.0
                },
                EarEvent::TurnEnded {
                    spoke_until_ms: 6520.0,
                    at_ms: 7220.0
                }
            ]
        );
    }

    #[test]
    fn marks_echo_when_their_audio_has_played_and_clear_drops_the_rest() {
        let mut ear = Ear::new(RATE, 700.0);
        ear.hear(0.0, &ms(1000.0));
        ear.mark(0.0, "first");
        ear.hear(5.0, &ms(1000.0));
        ear.mark(5.0, "second");
        let events = ear.advance(1000.0);
        assert!(
            events.contains(&EarEvent::MarkPlayed {
                name: "first".into(),
                at_ms: 1000.0
            }),
            "{events:?}"
        );
        assert!(!events
            .iter()
            .any(|e| matches!(e, EarEvent::MarkPlayed { name, .. } if name == "second")));
        // The caller barges in at 1.5 s; the agent clears: half a second never plays, the
        // pending mark is echoed at once.
        ear.clear(1500.0);
        assert_eq!(
            ear.advance(1500.0),
            vec![
                EarEvent::Cleared {
                    at_ms: 1500.0,
                    dropped_ms: 500.0
                },
                EarEvent::MarkPlayed {
                    name: "second".into(),
                    at_ms: 1500.0
                }
            ]
        );
        assert!(!ear.is_playing(1500.0));
        assert_eq!(ear.recording(1500.0).len(), 12_000);
        assert_eq!(
            ear.advance(2200.0),
            vec![EarEvent::TurnEnded {
                spoke_until_ms: 1500.0,
                at_ms: 2200.0
            }]
        );
    }

    #[test]
    fn a_done_signal_ends_the_turn_when_playout_ends() {
        let mut ear = Ear::new(RATE, 700.0);
        ear.hear(100.0, &ms(300.0));
        ear.agent_done();
        assert_eq!(
            ear.advance(400.0),
            vec![
                EarEvent::AgentStarted { at_ms: 100.0 },
                // Known to be the whole turn as soon as the agent says so.
                EarEvent::Quiet {
                    spoke_until_ms: 400.0,
                    at_ms: 400.0
                },
                EarEvent::TurnEnded {
                    spoke_until_ms: 400.0,
                    at_ms: 400.0
                }
            ]
        );
    }
}

mod raw_pcm {
    use serde_json::json;
    use voicesim::transport::raw_pcm::{self, Control};

    #[test]
    fn vonage_opening_frame_sizes_and_control_messages() {
        let opening: serde_json::Value = serde_json::from_str(
            &voicesim::transport::vonage::connected(16_000, &Default::default()),
        )
        .unwrap();
        assert_eq!(
            opening,
            json!({"event":"websocket:connected","content-type":"audio/l16;rate=16000"})
        );
        assert_eq!(raw_pcm::frame_bytes(8_000), 320);
        assert_eq!(raw_pcm::frame_bytes(16_000), 640);
        assert_eq!(raw_pcm::frame_bytes(24_000), 960);
        assert_eq!(
            raw_pcm::parse_control(r#"{"action":"clear"}"#).unwrap(),
            Control::Clear
        );
        assert_eq!(
            raw_pcm::parse_control(r#"{"type":"hangup"}"#).unwrap(),
            Control::Hangup
        );
        assert_eq!(
            raw_pcm::parse_control(r#"{"type":"transcript","text":"hi"}"#).unwrap(),
            Control::Other(json!({"type":"transcript","text":"hi"}))
        );
        assert!(raw_pcm::parse_control("hello")
            .unwrap_err()
            .to_string()
            .starts_with("raw-pcm: "));
    }
}

mod turns {
    use voicesim::noise::MicEvent;
    use voicesim::transport::event::{CallEvent, CallEventKind};
    use voicesim::transport::turns::{turns, BargeIn};

    fn at(at_ms: f64, kind: CallEventKind) -> CallEvent {
        CallEvent { at_ms, kind }
    }
    fn mic(frame_ms: f64, detail: MicEvent) -> CallEvent {
        at(frame_ms, CallEventKind::Mic { detail })
    }

    #[test]
    fn latency_talk_time_and_barge_in_come_from_the_event_log() {
        let log = vec![
            at(0.0, CallEventKind::Connected),
            // The agent greets first: no caller utterance to answer.
            at(300.0, CallEventKind::AgentStarted),
            at(
                2000.0,
                CallEventKind::AgentTurnEnded {
                    spoke_until_ms: 1300.0,
                    cut_off: false,
                    audio: voicesim::audio::Clip::new(Vec::new(), 8_000),
                },
            ),
            mic(2000.0, MicEvent::SpeechStarted { at_ms: 2000.0 }),
            mic(3500.0, MicEvent::SpeechEnded { at_ms: 3490.0 }),
            // Answers 810 ms after the caller stopped, talks 2 s; the caller cuts in after 500 ms
            // and the agent clears 180 ms later.
            at(4300.0, CallEventKind::AgentStarted),
            at(
                4800.0,
                CallEventKind::CallerCutIn {
                    due_ms: 4790.0,
                    asked_ms: 4000.0,
                },
            ),
            mic(4800.0, MicEvent::SpeechStarted { at_ms: 4800.0 }),
            at(4980.0, CallEventKind::AgentCleared { dropped_ms: 1320.0 }),
            mic(5600.0, MicEvent::SpeechEnded { at_ms: 5600.0 }),
            at(
                5680.0,
                CallEventKind::AgentTurnEnded {
                    spoke_until_ms: 4980.0,
                    cut_off: false,
                    audio: voicesim::audio::Clip::new(Vec::new(), 8_000),
                },
            ),
            // Then answers again, and the caller barges in without the agent stopping, 120 ms
            // after the moment it chose: it asked for it late.
            at(6000.0, CallEventKind::AgentStarted),
            at(
                6500.0,
                CallEventKind::CallerCutIn {
                    due_ms: 6380.0,
                    asked_ms: 6500.0,
                },
            ),
            mic(6500.0, MicEvent::SpeechStarted { at_ms: 6500.0 }),
            mic(7000.0, MicEvent::SpeechEnded { at_ms: 7000.0 }),
            at(
                7700.0,
                CallEventKind::AgentTurnEnded {
                    spoke_until_ms: 7000.0,
                    cut_off: false,
                    audio: voicesim::audio::Clip::new(Vec::new(), 8_000),
                },
            ),
        ];
        let t = turns(&log);
        assert_eq!(t.len(), 3);
        assert_eq!(
            (t[0].response_latency_ms, t[0].agent_talk_ms),
            (None, 1000.0)
        );
        assert_eq!(t[1].response_latency_ms, Some(810.0));
        assert_eq!(t[1].agent_talk_ms, 680.0);
        assert_eq!(
            t[1].barge_in,
            Some(BargeIn {
                at_ms: 4800.0,
                agent_stopped_after_ms: 180.0,
                cleared: true,
                late_ms: None,
            })
        );
        assert_eq!(t[2].response_latency_ms, Some(400.0));
        assert_eq!(
            t[2].barge_in,
            Some(BargeIn {
                at_ms: 6500.0,
                agent_stopped_after_ms: 500.0,
                cleared: false,
                late_ms: Some(120.0),
            })
        );
    }

    /// A late cut-in said once the agent's turn already had its barge-in (the caller spoke
    /// twice over it) leaves no lateness behind for the next turn's barge-in.
    #[test]
    fn a_cut_in_s_lateness_stays_with_the_speech_it_started() {
        let ended = |at_ms: f64| {
            at(
                at_ms,
                CallEventKind::AgentTurnEnded {
                    spoke_until_ms: at_ms,
                    cut_off: false,
                    audio: voicesim::audio::Clip::new(Vec::new(), 8_000),
                },
            )
        };
        let log = vec![
            at(0.0, CallEventKind::AgentStarted),
            mic(500.0, MicEvent::SpeechStarted { at_ms: 500.0 }),
            mic(900.0, MicEvent::SpeechEnded { at_ms: 900.0 }),
            at(
                1_200.0,
                CallEventKind::CallerCutIn {
                    due_ms: 1_000.0,
                    asked_ms: 1_200.0,
                },
            ),
            mic(1_200.0, MicEvent::SpeechStarted { at_ms: 1_200.0 }),
            mic(1_600.0, MicEvent::SpeechEnded { at_ms: 1_600.0 }),
            ended(2_000.0),
            at(3_000.0, CallEventKind::AgentStarted),
            mic(3_400.0, MicEvent::SpeechStarted { at_ms: 3_400.0 }),
            ended(4_000.0),
        ];
        let t = turns(&log);
        assert_eq!(t[0].barge_in.as_ref().unwrap().late_ms, None);
        assert_eq!(t[1].barge_in.as_ref().unwrap().at_ms, 3_400.0);
        assert_eq!(t[1].barge_in.as_ref().unwrap().late_ms, None);
    }

    #[test]
    fn the_event_log_is_json_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let log = vec![
            at(0.0, CallEventKind::Connected),
            mic(
                20.0,
                MicEvent::Burst {
                    at_ms: 12.5,
                    ms: 600.0,
                    file: "door.wav".into(),
                    snr_db: 5.0,
                },
            ),
            at(900.0, CallEventKind::MarkEchoed { name: "m1".into() }),
        ];
        voicesim::transport::call::write_event_log(&path, &log).unwrap();
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines[0],
            serde_json::json!({"at_ms":0.0,"event":"connected"})
        );
        assert_eq!(lines[1]["event"], "mic");
        assert_eq!(
            lines[1]["detail"],
            serde_json::json!({"event":"burst","at_ms":12.5,"ms":600.0,"file":"door.wav","snr_db":5.0})
        );
        assert_eq!(
            lines[2],
            serde_json::json!({"at_ms":900.0,"event":"mark_echoed","name":"m1"})
        );
    }
}

/// The Twilio family: each dialect's spelling of the same messages, as Pipecat's own
/// `parse_telephony_websocket` tells the providers apart (tests/pipecat.rs runs it for real).
mod telephony {
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::Message;
    use voicesim::audio::{Frame, FRAME_MS};
    use voicesim::transport::telephony::{Dialect, ProviderStream, Telephony};
    use voicesim::transport::twilio::AgentMessage;
    use voicesim::transport::{Adapter, AgentEvent};

    fn parse(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn telnyx_is_snake_case_with_the_stream_id_on_top() {
        let mut t = ProviderStream::new(Dialect::Telnyx, 1, [("a".into(), "b".into())].into());
        assert_eq!(
            parse(&t.connected().unwrap()),
            json!({"event":"connected","version":"1.0.0"})
        );
        let start = parse(&t.start());
        assert_eq!(start["event"], "start");
        assert_eq!(start["sequence_number"], "1");
        assert_eq!(start["stream_id"], json!(t.stream_id));
        assert_eq!(start["start"]["call_control_id"], json!(t.call_id));
        assert_eq!(start["start"]["media_format"]["encoding"], "PCMU");
        assert_eq!(start["start"]["custom_parameters"], json!({"a":"b"}));
        let media = parse(&t.media(20, &[0x7F, 0x00]));
        assert_eq!(
            media,
            json!({"event":"media","sequence_number":"2","stream_id":t.stream_id,
                   "media":{"track":"inbound","chunk":"1","timestamp":"20","payload":"fwA="}})
        );
        assert_eq!(parse(&t.dtmf('#'))["dtmf"], json!({"digit":"#"}));
        assert_eq!(parse(&t.mark("m"))["mark"], json!({"name":"m"}));
        assert_eq!(t.cleared(), None);
        assert_eq!(
            parse(&t.stop().unwrap())["stop"]["call_control_id"],
            json!(t.call_id)
        );
    }

    #[test]
    fn plivo_has_no_connected_counts_in_numbers_and_answers_checkpoints() {
        let mut p = ProviderStream::new(Dialect::Plivo, 1, [("a".into(), "b".into())].into());
        assert_eq!(p.connected(), None);
        let start = parse(&p.start());
        assert_eq!(start["sequenceNumber"], 0);
        assert_eq!(start["start"]["streamId"], json!(p.stream_id));
        assert_eq!(start["start"]["callId"], json!(p.call_id));
        assert_eq!(
            parse(start["extra_headers"].as_str().unwrap()),
            json!({"a":"b"})
        );
        let media = parse(&p.media(40, &[0xFF]));
        assert_eq!(media["sequenceNumber"], 1);
        assert_eq!(media["media"]["chunk"], 1);
        assert_eq!(
            parse(&p.mark("reply-1")),
            json!({"event":"playedStream","sequenceNumber":2,"streamId":p.stream_id,"name":"reply-1"})
        );
        assert_eq!(parse(&p.cleared().unwrap())["event"], "clearedAudio");
        assert_eq!(p.stop(), None);
        let plivo = Dialect::Plivo;
        assert_eq!(
            plivo
                .parse(r#"{"event":"playAudio","media":{"contentType":"audio/x-mulaw","sampleRate":8000,"payload":"fwA="},"streamId":"s"}"#)
                .unwrap(),
            AgentMessage::Media { payload: vec![0x7F, 0x00] }
        );
        assert_eq!(
            plivo
                .parse(r#"{"event":"checkpoint","streamId":"s","name":"c1"}"#)
                .unwrap(),
            AgentMessage::Mark { name: "c1".into() }
        );
        assert_eq!(
            plivo
                .parse(r#"{"event":"clearAudio","streamId":"s"}"#)
                .unwrap(),
            AgentMessage::Clear
        );
        let err = plivo
            .parse(r#"{"event":"media","media":{"payload":""}}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plivo: unknown event \"media\""),
            "{err}"
        );
    }

    #[test]
    fn exotel_sends_pcm16_in_100_ms_chunks_and_flushes_the_rest_on_hangup() {
        let mut exotel = Telephony::new(Dialect::Exotel, 1, Default::default());
        let opening = exotel.opening();
        assert_eq!(opening.len(), 2);
        let Message::Text(start) = &opening[1] else {
            panic!()
        };
        let start = parse(start);
        assert_eq!(start["start"]["stream_sid"], start["stream_sid"]);
        assert!(start["start"]["account_sid"].is_string());
        let frame = Frame {
            index: 0,
            rate: 8_000,
            samples: vec![0.25; 160],
        };
        let mut sent = Vec::new();
        for i in 0..7u64 {
            sent.extend(exotel.frame(&frame, i * FRAME_MS as u64));
        }
        assert_eq!(sent.len(), 1, "five 20 ms frames make one chunk");
        let Message::Text(media) = &sent[0] else {
            panic!()
        };
        let media = parse(media);
        assert_eq!(media["media"]["timestamp"], "0");
        use base64::Engine as _;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(media["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(payload.len(), 1600, "100 ms of PCM16 at 8 kHz");
        let closing = exotel.closing();
        assert_eq!(closing.len(), 2, "the last 40 ms, then stop");
        let Message::Text(rest) = &closing[0] else {
            panic!()
        };
        assert_eq!(parse(rest)["media"]["timestamp"], "100");
        let events = exotel
            .receive(&Message::text(r#"{"event":"clear","stream_sid":"x"}"#))
            .unwrap();
        assert_eq!(events, vec![AgentEvent::Clear]);
        assert!(
            exotel.receive(&Message::binary(vec![1, 2])).is_err(),
            "binary on a JSON protocol"
        );
    }
}

mod vonage {
    use serde_json::json;
    use tokio_tungstenite::tungstenite::Message;
    use voicesim::transport::vonage::{self, Vonage};
    use voicesim::transport::{Adapter, AgentEvent};

    #[test]
    fn notify_comes_back_when_played_and_clear_is_acknowledged() {
        let mut v = Vonage::new(16_000, [("caller".into(), "x".into())].into());
        let Message::Text(opening) = &v.opening()[0] else {
            panic!()
        };
        let opening: serde_json::Value = serde_json::from_str(opening).unwrap();
        assert_eq!(
            opening,
            json!({"event":"websocket:connected","content-type":"audio/l16;rate=16000","caller":"x"})
        );
        let notify = r#"{"action":"notify","payload":{"mark":"reply-1"}}"#;
        let events = v.receive(&Message::text(notify)).unwrap();
        let [AgentEvent::Mark(name)] = &events[..] else {
            panic!("{events:?}")
        };
        let Message::Text(echo) = &v.mark_played(name)[0] else {
            panic!()
        };
        let echo: serde_json::Value = serde_json::from_str(echo).unwrap();
        assert_eq!(
            echo,
            json!({"event":"websocket:notify","payload":{"mark":"reply-1"}})
        );
        assert_eq!(
            v.receive(&Message::text(r#"{"action":"clear"}"#)).unwrap(),
            vec![AgentEvent::Clear]
        );
        assert_eq!(
            v.cleared(),
            vec![Message::text(r#"{"event":"websocket:cleared"}"#)]
        );
        let dtmf: serde_json::Value = serde_json::from_str(&vonage::dtmf('5')).unwrap();
        assert_eq!(dtmf["event"], "websocket:dtmf");
        assert_eq!(dtmf["digit"], "5");
    }
}

mod audiohook {
    use serde_json::{json, Value};
    use tokio_tungstenite::tungstenite::Message;
    use voicesim::audio::Frame;
    use voicesim::transport::audiohook::{AudioHook, ServerMessage, Session};
    use voicesim::transport::{Adapter, AgentEvent};

    fn parse(m: &Message) -> Value {
        let Message::Text(t) = m else { panic!("{m:?}") };
        serde_json::from_str(t).unwrap()
    }

    #[test]
    fn audio_flows_after_opened_with_pings_positions_and_a_close() {
        let mut hook = AudioHook::new(1, [("order".into(), "4521".into())].into());
        let open = parse(&hook.opening()[0]);
        assert_eq!(open["version"], "2");
        assert_eq!(open["seq"], 1);
        assert_eq!(open["position"], "PT0.000S");
        assert_eq!(
            open["parameters"]["inputVariables"],
            json!({"order":"4521"})
        );
        let frame = Frame {
            index: 0,
            rate: 8_000,
            samples: vec![0.0; 160],
        };
        assert!(hook.frame(&frame, 0).is_empty(), "nothing before opened");
        let opened =
            r#"{"version":"2","type":"opened","seq":1,"clientseq":1,"id":"x","parameters":{}}"#;
        assert!(hook.receive(&Message::text(opened)).unwrap().is_empty());
        let mut out = Vec::new();
        for i in 0..=250u64 {
            out.extend(hook.frame(&frame, i * 20));
        }
        let binary = out
            .iter()
            .filter(|m| matches!(m, Message::Binary(b) if b.len() == 160));
        assert_eq!(binary.count(), 251, "20 ms of PCMU per frame");
        let pings: Vec<Value> = out.iter().filter(|m| m.is_text()).map(parse).collect();
        assert_eq!(pings.len(), 1, "a ping every 5 s");
        assert_eq!(pings[0]["type"], "ping");
        assert_eq!(pings[0]["serverseq"], 1);
        assert_eq!(pings[0]["position"], "PT5.020S");
        let barge = r#"{"version":"2","type":"event","seq":2,"parameters":{"entities":[{"type":"barge_in","data":{}}]}}"#;
        assert_eq!(
            hook.receive(&Message::text(barge)).unwrap(),
            vec![AgentEvent::Clear]
        );
        let dtmf = parse(&hook.dtmf('7').unwrap()[0]);
        assert_eq!(
            (dtmf["type"].as_str(), dtmf["parameters"]["digit"].as_str()),
            (Some("dtmf"), Some("7"))
        );
        let disconnect =
            r#"{"version":"2","type":"disconnect","seq":3,"parameters":{"reason":"completed"}}"#;
        assert_eq!(
            hook.receive(&Message::text(disconnect)).unwrap(),
            vec![AgentEvent::Hangup]
        );
        let close = parse(&hook.closing()[0]);
        assert_eq!(close["type"], "close");
        assert_eq!(close["serverseq"], 3);
    }

    #[test]
    fn hold_and_unknown_messages() {
        let mut s = Session::new(2, Default::default());
        let pause: Value = serde_json::from_str(&s.pause()).unwrap();
        let resume: Value = serde_json::from_str(&s.resume()).unwrap();
        assert_eq!(
            (pause["type"].as_str(), resume["type"].as_str()),
            (Some("pause"), Some("resume"))
        );
        assert_eq!(resume["seq"], 2);
        assert_eq!(
            s.parse(r#"{"type":"resumed","seq":4}"#).unwrap(),
            ServerMessage::Acknowledged("resumed".into())
        );
        let err = s.parse(r#"{"type":"dance"}"#).unwrap_err().to_string();
        assert!(err.starts_with("genesys: unknown message type"), "{err}");
    }
}

mod pipecat {
    use prost::Message as _;
    use tokio_tungstenite::tungstenite::Message;
    use voicesim::audio::Frame as AudioFrame;
    use voicesim::transport::pipecat::{self, frame::Frame as Kind, Frame, Pipecat};
    use voicesim::transport::{Adapter, AgentEvent};

    fn binary(kind: Kind) -> Message {
        Message::binary(Frame { frame: Some(kind) }.encode_to_vec())
    }

    #[test]
    fn frames_both_ways_and_the_bot_s_rate_resampled_to_the_caller_s() {
        let mut p = Pipecat::new(16_000);
        let out = p.frame(
            &AudioFrame {
                index: 0,
                rate: 16_000,
                samples: vec![0.5; 320],
            },
            0,
        );
        let Message::Binary(bytes) = &out[0] else {
            panic!()
        };
        let Some(Kind::Audio(audio)) = Frame::decode(bytes.as_ref()).unwrap().frame else {
            panic!()
        };
        assert_eq!(
            (audio.sample_rate, audio.num_channels, audio.audio.len()),
            (16_000, 1, 640)
        );
        // One second of a 24 kHz tone arrives in 20 ms frames and plays at 16 kHz.
        let mut heard = Vec::new();
        for chunk in 0..50 {
            let samples: Vec<f32> = (0..480)
                .map(|i| {
                    ((chunk * 480 + i) as f32 * 440.0 * std::f32::consts::TAU / 24_000.0).sin()
                        * 0.5
                })
                .collect();
            let message = Message::binary(pipecat::audio_frame(chunk as u64, &samples, 24_000));
            for event in p.receive(&message).unwrap() {
                let AgentEvent::Audio(a) = event else {
                    panic!("{event:?}")
                };
                heard.extend(a);
            }
        }
        assert!(
            (15_000..=16_000).contains(&heard.len()),
            "{} samples",
            heard.len()
        );
        let peak = heard.iter().fold(0.0f32, |m, s| m.max(s.abs()));
        assert!((0.45..0.55).contains(&peak), "peak {peak}");
        let text = binary(Kind::Text(pipecat::TextFrame {
            text: "Hello".into(),
            ..Default::default()
        }));
        assert_eq!(
            p.receive(&text).unwrap(),
            vec![AgentEvent::Transcript("Hello".into())]
        );
        let heard = binary(Kind::Transcription(pipecat::TranscriptionFrame {
            text: "hi".into(),
            ..Default::default()
        }));
        assert_eq!(
            p.receive(&heard).unwrap(),
            vec![AgentEvent::Heard("hi".into())]
        );
        let stop = binary(Kind::Interruption(Default::default()));
        assert_eq!(p.receive(&stop).unwrap(), vec![AgentEvent::Clear]);
        let done = binary(Kind::Message(pipecat::MessageFrame {
            data: r#"{"label":"rtvi-ai","type":"bot-stopped-speaking"}"#.into(),
        }));
        assert_eq!(p.receive(&done).unwrap(), vec![AgentEvent::Done]);
        let err = p.receive(&Message::text("{}")).unwrap_err().to_string();
        assert!(err.contains("ProtobufFrameSerializer"), "{err}");
        assert!(p.receive(&Message::binary(vec![0xff; 3])).is_err());
    }
}
