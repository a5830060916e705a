//! Property tests of the frame codec: round trips, arbitrary chunking, and damage.

mod support;

use bytes::BytesMut;
use posbridge_wire::*;
use proptest::prelude::*;

fn encode_all(frames: &[Frame]) -> Vec<Vec<u8>> {
    let codec = FrameCodec::new();
    frames
        .iter()
        .map(|f| {
            let mut out = BytesMut::new();
            codec.encode(f, &mut out).unwrap();
            out.to_vec()
        })
        .collect()
}

/// Feeds `stream` to a decoder in pieces of the given sizes (cycled), then ends the stream.
/// Returns the frames, the errors, and the largest buffer the decoder was left holding.
fn decode_chunked(stream: &[u8], chunks: &[usize]) -> (Vec<Frame>, Vec<FrameError>, usize) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::new();
    let (mut frames, mut errors, mut peak) = (Vec::new(), Vec::new(), 0);
    let mut at = 0;
    let mut sizes = chunks.iter().cycle();
    while at < stream.len() {
        let n = (*sizes.next().unwrap()).clamp(1, stream.len() - at);
        buf.extend_from_slice(&stream[at..at + n]);
        at += n;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break,
                Err(e) => errors.push(e),
            }
        }
        peak = peak.max(buf.len());
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => break,
            Err(e) => errors.push(e),
        }
    }
    assert!(buf.is_empty(), "decode_eof must drain the buffer");
    (frames, errors, peak)
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, x)| Edit::Flip(i, x)),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..20)
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<prop::sample::Index>(), 1usize..8).prop_map(|(i, n)| Edit::Delete(i, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    match edit {
        Edit::Flip(i, x) => {
            let i = i.index(bytes.len());
            bytes[i] ^= x;
        }
        Edit::Insert(i, b) => {
            let i = i.index(bytes.len() + 1);
            bytes.splice(i..i, b.iter().copied());
        }
        Edit::Delete(i, n) => {
            let i = i.index(bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn every_frame_round_trips(frame in support::frame(4079)) {
        let wire = &encode_all(std::slice::from_ref(&frame))[0];
        prop_assert_eq!(wire.len(), frame.encoded_len());
        let mut buf = BytesMut::from(&wire[..]);
        prop_assert_eq!(FrameCodec::new().decode(&mut buf).unwrap(), Some(frame));
        prop_assert!(buf.is_empty());
    }

    #[test]
    fn any_chunking_decodes_the_same_frames(
        frames in prop::collection::vec(support::frame(600), 1..12),
        chunks in prop::collection::vec(1usize..700, 1..20),
    ) {
        let stream: Vec<u8> = encode_all(&frames).concat();
        let (out, errors, _) = decode_chunked(&stream, &chunks);
        prop_assert!(errors.is_empty(), "{:?}", errors);
        prop_assert_eq!(out, frames);
    }

    #[test]
    fn damage_never_yields_a_bad_frame_and_resynchronises(
        frames in prop::collection::vec(support::frame(300), 1..10),
        damage in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(edit(), 1..4)), 0..6),
        noise in prop::collection::vec(any::<u8>(), 0..40),
        chunks in prop::collection::vec(1usize..400, 1..10),
    ) {
        let originals = encode_all(&frames);
        let mut pieces = originals.clone();
        for (which, edits) in &damage {
            let k = which.index(pieces.len());
            for e in edits {
                if !pieces[k].is_empty() {
                    apply(&mut pieces[k], e);
                }
            }
        }
        // A frame must come out exactly when its bytes are still whole somewhere in its piece
        // (edits that only add bytes before or after it leave it intact).
        let expected: Vec<Frame> = frames
            .iter()
            .zip(&originals)
            .zip(&pieces)
            .filter(|((_, orig), piece)| contains(piece, orig))
            .map(|((f, _), _)| f.clone())
            .collect();
        let mut stream = noise.clone();
        stream.extend(pieces.concat());
        let (out, errors, peak) = decode_chunked(&stream, &chunks);
        prop_assert_eq!(&out, &expected, "errors: {:?}", errors);
        // Never more than one maximum frame plus the last chunk is held.
        prop_assert!(peak <= DEFAULT_MAX_FRAME_SIZE + 400, "peak {}", peak);
        // Error offsets point at a sync marker in the stream.
        for e in &errors {
            let at = e.offset as usize;
            prop_assert_eq!(&stream[at..at + 2], &SYNC[..]);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..3000), chunks in prop::collection::vec(1usize..500, 1..5)) {
        let (out, _, peak) = decode_chunked(&bytes, &chunks);
        // Random bytes essentially never hold a frame with two valid checksums.
        prop_assert!(out.is_empty());
        prop_assert!(peak <= DEFAULT_MAX_FRAME_SIZE + 500);
    }
}
