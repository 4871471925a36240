//! What the fuzz targets share.

use tokio_tungstenite::tungstenite::Message;
use voicesim::transport::Protocol;

/// Feeds `data` as messages of `protocol` both ways: to the caller's adapter (what an agent
/// sends voicesim) and to the reference agent's wire (what a caller sends it). Messages are
/// separated by a 0xFF byte; the first byte of each says text (even) or binary (odd).
pub fn messages(protocol: Protocol, data: &[u8]) {
    let mut caller = protocol.adapter(1, Default::default(), 16_000);
    let mut agent = voicesim::agent::wire::for_protocol(protocol, 16_000);
    let _ = caller.opening();
    for chunk in data.split(|&b| b == 0xFF) {
        let Some((&kind, body)) = chunk.split_first() else {
            continue;
        };
        let message = if kind % 2 == 0 {
            Message::text(String::from_utf8_lossy(body).into_owned())
        } else {
            Message::binary(body.to_vec())
        };
        // Events or a protocol error: both are answers; only a panic is a finding.
        let _ = caller.receive(&message);
        let _ = agent.receive(&message);
        let _ = agent.answers();
    }
    let _ = caller.cleared();
    let _ = caller.dtmf('1');
    let _ = caller.caller_stopped();
    let _ = caller.mark_played("m");
    let _ = caller.closing();
}
