//! Property tests of the message encoding: every message type round-trips, the encoding is
//! deterministic, and damaged or truncated messages give typed errors, never panics.

mod support;

use bytes::BytesMut;
use posbridge_wire::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(msg in support::message()) {
        let bytes = msg.to_bytes().expect("strategies stay within limits");
        let back = Message::decode(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &msg);
        // Deterministic: the decoded value encodes to the very same bytes.
        prop_assert_eq!(back.to_bytes().unwrap(), bytes);
    }

    #[test]
    fn truncated_messages_fail_cleanly(msg in support::message(), cut in any::<prop::sample::Index>()) {
        let bytes = msg.to_bytes().unwrap();
        let at = cut.index(bytes.len());
        // Every strict prefix either fails with a typed error or (when the cut falls between
        // fields) decodes to a message that re-encodes to exactly that prefix.
        if let Ok(m) = Message::decode(&bytes[..at]) {
            prop_assert_eq!(&m.to_bytes().unwrap()[..], &bytes[..at]);
        }
    }

    #[test]
    fn mutated_messages_never_panic_and_stay_canonical(
        msg in support::message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = msg.to_bytes().unwrap().to_vec();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Ok(m) = Message::decode(&bytes) {
            // Anything accepted re-encodes and decodes to the same value.
            let again = m.to_bytes().unwrap();
            prop_assert_eq!(Message::decode(&again).unwrap(), m);
        }
    }

    #[test]
    fn unknown_optional_fields_are_skipped_and_critical_ones_refused(
        msg in support::message(),
        number in 100u8..=127,
        value in prop::collection::vec(any::<u8>(), 0..20),
    ) {
        // Field numbers 100-127 are unused by every structure; appending one keeps key order.
        let bytes = msg.to_bytes().unwrap();
        for critical in [false, true] {
            let mut extended = bytes.to_vec();
            extended.push(number << 1 | u8::from(critical));
            extended.push(value.len() as u8);
            extended.extend_from_slice(&value);
            match Message::decode(&extended) {
                Ok(m) => {
                    prop_assert!(!critical);
                    prop_assert_eq!(&m, &msg);
                }
                Err(e) => {
                    prop_assert!(critical);
                    prop_assert_eq!(e.kind, MessageErrorKind::UnknownCritical { key: number << 1 | 1 });
                    prop_assert_eq!(e.offset, bytes.len());
                }
            }
        }
    }

    #[test]
    fn messages_travel_in_frames(msgs in prop::collection::vec(support::message(), 1..6)) {
        let mut big = FrameConfig::new();
        big.set_max_frame_size(HARD_MAX_FRAME_SIZE).unwrap();
        let mut codec = FrameCodec::with_config(big);
        let mut wire = BytesMut::new();
        for (i, m) in msgs.iter().enumerate() {
            codec.encode(&Frame::data(i as u32, m.to_bytes().unwrap().freeze()), &mut wire).unwrap();
        }
        for (i, m) in msgs.iter().enumerate() {
            let f = codec.decode(&mut wire).unwrap().unwrap();
            prop_assert_eq!(f.seq, i as u32);
            prop_assert_eq!(&Message::decode(&f.payload).unwrap(), m);
        }
    }
}

#[test]
fn every_message_type_is_generated() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut seen = std::collections::HashSet::new();
    let mut runner = TestRunner::deterministic();
    let strategy = support::message();
    for _ in 0..5000 {
        seen.insert(
            strategy
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .message_type(),
        );
    }
    for t in MessageType::ALL {
        assert!(seen.contains(t), "{t:?} is never generated");
    }
}
