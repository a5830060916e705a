//! Entry points for the cargo-fuzz targets in `fuzz/` (compiled only with `--cfg fuzzing`).
//! Each one asserts properties, so the fuzzer finds wrong answers as well as panics.

use alloc::vec::Vec;
use bytes::BytesMut;

use crate::{Frame, FrameCodec, FrameError, Message};

/// Everything a decoder reports for `data` fed in the given pieces, end of stream included.
fn decode_all(
    data: &[u8],
    pieces: &mut dyn Iterator<Item = usize>,
) -> Vec<Result<Frame, FrameError>> {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = pieces
            .next()
            .unwrap_or(data.len())
            .clamp(1, data.len() - at);
        buf.extend_from_slice(&data[at..at + n]);
        at += n;
        while let Some(item) = codec.decode(&mut buf).transpose() {
            out.push(item);
        }
        assert!(
            buf.len() <= crate::DEFAULT_MAX_FRAME_SIZE + n,
            "decoder holds too much"
        );
    }
    while let Some(item) = codec.decode_eof(&mut buf).transpose() {
        out.push(item);
    }
    assert!(buf.is_empty());
    out
}

/// Decodes frames from arbitrary bytes; every frame must have been in the input verbatim and
/// must round-trip through the encoder.
pub fn frame_decode(data: &[u8]) {
    let codec = FrameCodec::new();
    for frame in decode_all(data, &mut core::iter::empty())
        .into_iter()
        .flatten()
    {
        let mut out = BytesMut::new();
        codec
            .encode(&frame, &mut out)
            .expect("a decoded frame fits");
        assert!(
            data.windows(out.len()).any(|w| w == &out[..]),
            "a frame that was not in the input"
        );
        let again = FrameCodec::new()
            .decode(&mut out)
            .expect("re-decodes")
            .expect("whole");
        assert_eq!(again, frame);
    }
}

/// Decodes a message from arbitrary bytes; what decodes must encode and decode to itself.
pub fn message_decode(data: &[u8]) {
    if let Ok(msg) = Message::decode(data) {
        let bytes = msg.to_bytes().expect("a decoded message encodes");
        let again = Message::decode(&bytes).expect("own encoding decodes");
        assert_eq!(again, msg);
        assert_eq!(
            again.to_bytes().expect("encodes"),
            bytes,
            "encoding not deterministic"
        );
    }
}

/// Feeds a stream to the decoder in pieces the fuzzer chooses (the first byte says how many
/// piece sizes follow); the result must not depend on the split points.
pub fn stream_chunking(data: &[u8]) {
    let Some((&count, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(count % 32).min(rest.len());
    let (sizes, stream) = rest.split_at(count);
    let whole = decode_all(stream, &mut core::iter::empty());
    let mut pieces = sizes.iter().map(|&s| usize::from(s)).cycle();
    let pieces: &mut dyn Iterator<Item = usize> = if sizes.is_empty() {
        &mut core::iter::repeat(1)
    } else {
        &mut pieces
    };
    let split = decode_all(stream, pieces);
    assert_eq!(whole, split, "split points changed the result");
}
