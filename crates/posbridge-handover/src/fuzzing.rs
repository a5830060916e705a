//! Entry point of the `ndef_parse` fuzz target (compiled only with `--cfg fuzzing`).

use crate::{Handover, NdefRecordKind, encode_ndef_message, parse_ndef_message};

/// Parses arbitrary bytes as an NDEF message, a handover and (if UTF-8) a handover URI; what
/// parses must encode and parse back to the same value.
pub fn ndef_parse(data: &[u8]) {
    if let Ok(records) = parse_ndef_message(data) {
        let again =
            parse_ndef_message(&encode_ndef_message(&records)).expect("own encoding parses");
        assert_eq!(again, records);
    }
    if let Ok(h) = Handover::from_ndef(data) {
        for kind in [NdefRecordKind::Mime, NdefRecordKind::External] {
            let tag = h.to_ndef(kind).expect("a parsed handover encodes");
            assert_eq!(Handover::from_ndef(&tag).expect("own encoding parses"), h);
        }
        assert_eq!(Handover::from_uri(&h.to_uri()).expect("own URI parses"), h);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(h) = Handover::from_uri(text)
    {
        assert_eq!(Handover::from_uri(&h.to_uri()).expect("own URI parses"), h);
    }
}
