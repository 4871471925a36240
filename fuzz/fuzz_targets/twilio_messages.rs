//! Twilio Media Streams messages, both ways (see `voicesim_fuzz::messages`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    voicesim_fuzz::messages(voicesim::transport::Protocol::Twilio, data)
});
