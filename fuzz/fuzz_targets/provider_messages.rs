//! Telnyx, Plivo, Exotel, Vonage, Pipecat and Genesys AudioHook messages, both ways; the
//! first byte picks the protocol (see `voicesim_fuzz::messages`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use voicesim::transport::Protocol;

const PROVIDERS: [Protocol; 6] = [
    Protocol::Telnyx,
    Protocol::Plivo,
    Protocol::Exotel,
    Protocol::Vonage,
    Protocol::Pipecat,
    Protocol::Genesys,
];

fuzz_target!(|data: &[u8]| {
    if let Some((&pick, rest)) = data.split_first() {
        let protocol = PROVIDERS[pick as usize % PROVIDERS.len()];
        voicesim_fuzz::messages(protocol, rest)
    }
});
