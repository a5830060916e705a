//! The upload format: any batch survives a round trip; bad bodies and headers get typed errors
//! that say where; a signature holds only for its body and its till's key.

use posbridge_crypto::SigningIdentity;
use posbridge_journal::{OutboxItem, OutboxRecord};
use posbridge_sync::{Ack, SyncError, Upload, hex, sign, till_of, unhex, verify};
use proptest::prelude::*;

fn item() -> impl Strategy<Value = OutboxItem> {
    let bytes = |n: usize| proptest::collection::vec(any::<u8>(), n);
    prop_oneof![
        (
            bytes(16),
            bytes(16),
            "[a-z_]{1,10}",
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
            proptest::option::of(bytes(32)),
            proptest::option::of("\\PC{0,40}"),
            any::<u64>(),
            any::<u64>(),
        )
            .prop_map(
                |(key, terminal, state, request, result, terminal_key, note, created, updated)| {
                    OutboxItem::Entry {
                        key,
                        terminal,
                        state,
                        request,
                        result,
                        terminal_key,
                        note,
                        created,
                        updated,
                    }
                }
            ),
        (
            bytes(16),
            bytes(16),
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::option::of(bytes(32)),
            any::<u64>()
        )
            .prop_map(|(key, terminal, result, terminal_key, recorded)| {
                OutboxItem::Settlement {
                    key,
                    terminal,
                    result,
                    terminal_key,
                    recorded,
                }
            }),
    ]
}

proptest! {
    #[test]
    fn any_upload_round_trips(
        till in any::<[u8; 16]>(),
        journal in any::<[u8; 16]>(),
        start in 1u64..1_000_000,
        items in proptest::collection::vec(item(), 0..20),
    ) {
        let records: Vec<OutboxRecord> = items
            .into_iter()
            .enumerate()
            .map(|(i, item)| OutboxRecord { seq: start + 2 * i as u64, item })
            .collect();
        let upload = Upload { till, journal, records };
        let body = upload.to_json();
        prop_assert_eq!(Upload::from_json(&body).unwrap(), upload);
    }

    #[test]
    fn arbitrary_bytes_are_refused_or_read_never_a_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Upload::from_json(&body);
    }
}

fn body(records: &str) -> Vec<u8> {
    format!(
        r#"{{"version":1,"till":"{t}","journal":"{t}","records":[{records}]}}"#,
        t = "00".repeat(16)
    )
    .into_bytes()
}

const ENTRY: &str = r#""entry":{"key":"00000000000000000000000000000001","terminal":"00000000000000000000000000000002","state":"done","request":"AAEC","result":null,"terminal_key":null,"note":null,"created":1,"updated":2}"#;

#[test]
fn bad_bodies_get_typed_errors_that_say_where() {
    let ok = body(&format!(r#"{{"seq":1,{ENTRY}}}"#));
    assert_eq!(Upload::from_json(&ok).unwrap().records.len(), 1);
    let cases: [(Vec<u8>, &str); 6] = [
        (
            body(&format!(r#"{{"seq":2,{ENTRY}}},{{"seq":2,{ENTRY}}}"#)),
            "records[1]: sequence numbers must rise",
        ),
        (
            body(&format!(r#"{{"seq":0,{ENTRY}}}"#)),
            "records[0]: sequence numbers must rise",
        ),
        (
            body(r#"{"seq":1}"#),
            "records[0]: exactly one of entry and settlement",
        ),
        (
            body(&format!(r#"{{"seq":1,{}}}"#, ENTRY.replace("AAEC", "!!"))),
            "records[0].entry.request: not base64",
        ),
        (
            body(&format!(
                r#"{{"seq":1,{}}}"#,
                ENTRY.replace("0000000000000001", "01")
            )),
            "records[0].entry.key: 32 hex digits",
        ),
        (b"{\"version\":1}".to_vec(), "missing field"),
    ];
    for (bad, says) in cases {
        match Upload::from_json(&bad) {
            Err(SyncError::Malformed(why)) => assert!(why.contains(says), "{why} lacks {says:?}"),
            other => panic!("{} -> {other:?}", String::from_utf8_lossy(&bad)),
        }
    }
    let v2 = String::from_utf8(ok)
        .unwrap()
        .replace("\"version\":1", "\"version\":2");
    assert_eq!(Upload::from_json(v2.as_bytes()), Err(SyncError::Version(2)));
    assert!(matches!(
        Ack::from_json(b"{}"),
        Err(SyncError::Malformed(_))
    ));
}

#[test]
fn a_signature_holds_for_its_body_and_its_key_only() {
    let till = SigningIdentity::from_secret(&[1; 32]);
    let other = SigningIdentity::from_secret(&[2; 32]);
    let body = body(&format!(r#"{{"seq":1,{ENTRY}}}"#));
    let signature = sign(&till, &body);
    assert_eq!(signature.len(), 128);
    verify(&till.public_key(), &body, &signature).unwrap();
    assert_eq!(
        verify(&other.public_key(), &body, &signature),
        Err(SyncError::Signature)
    );
    let mut changed = body.clone();
    changed[20] ^= 1;
    assert_eq!(
        verify(&till.public_key(), &changed, &signature),
        Err(SyncError::Signature)
    );
    assert_eq!(
        verify(&till.public_key(), &body, "abc"),
        Err(SyncError::Header(posbridge_sync::SIGNATURE_HEADER))
    );
    // Not a result's or a settlement's signature: the upload's context is its own.
    assert_ne!(signature, hex(&[0; 64]));
    assert_eq!(till_of(&"ab".repeat(16)).unwrap(), [0xab; 16]);
    assert!(till_of("xyz").is_err());
    assert_eq!(unhex("0aFF"), Some(vec![10, 255]));
    assert_eq!(unhex("0"), None);
}
