//! Entry point of the `handshake_parse` fuzz target (compiled only with `--cfg fuzzing`).

use crate::{ChannelConfig, InitiatorHandshake, StaticKeypair, respond};

/// Feeds arbitrary bytes to both sides' handshake parsers: the terminal reading a first message,
/// and a client reading an answer. Nothing may panic, and garbage must never yield a channel.
pub fn handshake_parse(data: &[u8]) {
    let terminal = StaticKeypair::from_parts([0x11; 32], [0; 32]);
    assert!(
        respond(&terminal, data, |_| true, b"", ChannelConfig::default()).is_err(),
        "a channel from bytes nobody made"
    );
    let client = StaticKeypair::from_parts([0x22; 32], [0; 32]);
    let peer = [9u8; 32];
    if let Ok((hs, _)) = InitiatorHandshake::start(&client, &peer, b"", ChannelConfig::default()) {
        assert!(hs.finish(data).is_err(), "a channel from bytes nobody made");
    }
}
