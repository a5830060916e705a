//! NFC (NDEF) and QR (URI) handover: round trips, real-world record shapes, typed errors.

use posbridge_handover::*;
use proptest::prelude::*;

fn full() -> Handover {
    let mut h = Handover::new(*b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff");
    h.name = Some("Café Müller – Kasse 2".into());
    h.tcp.push(TcpEndpoint {
        host: "192.168.1.20".into(),
        port: 20007,
    });
    h.tcp.push(TcpEndpoint {
        host: "fe80::1".into(),
        port: 22001,
    });
    h.tls_pin = Some([0x3A; 32]);
    h.ble_address = Some([0xC0, 0xFF, 0xEE, 0x00, 0x12, 0x34]);
    h.ble_name = Some("POS-0042".into());
    h.usb.push(UsbTarget {
        vid: 0x1234,
        pid: 0x5678,
        serial_number: Some("T 0042/7".into()),
    });
    h.pairing_secret = Some(PairingSecret::from_bytes([0x5C; 16]));
    h
}

#[test]
fn ndef_round_trip_as_mime_and_external_records() {
    let h = full();
    for kind in [NdefRecordKind::Mime, NdefRecordKind::External] {
        let tag = h.to_ndef(kind).unwrap();
        // One short record: MB, ME, SR set; TNF 2 (MIME) or 4 (external).
        let tnf = if kind == NdefRecordKind::Mime {
            0x02
        } else {
            0x04
        };
        assert_eq!(tag[0], 0x80 | 0x40 | 0x10 | tnf);
        assert_eq!(Handover::from_ndef(&tag).unwrap(), h);
    }
}

#[test]
fn long_records_and_other_records_are_read() {
    let h = full();
    // An Android application record first, then the handover as a long record (4-byte payload
    // length) with an id, and its MIME type in another case.
    let aar = NdefRecord {
        tnf: Tnf::External,
        record_type: b"android.com:pkg".to_vec(),
        id: Vec::new(),
        payload: b"dev.posbridge.app".to_vec(),
    };
    let handover = NdefRecord {
        tnf: Tnf::Mime,
        record_type: b"Application/VND.posbridge.Handover".to_vec(),
        id: b"t1".to_vec(),
        payload: h.to_payload().unwrap(),
    };
    let mut bytes = vec![0x80 | 0x10 | 0x04, 15, 17];
    bytes.extend_from_slice(&aar.record_type);
    bytes.extend_from_slice(&aar.payload);
    bytes.push(0x40 | 0x08 | 0x02); // ME, IL, MIME; no SR: long form
    bytes.push(handover.record_type.len() as u8);
    bytes.extend_from_slice(&(handover.payload.len() as u32).to_be_bytes());
    bytes.push(2);
    bytes.extend_from_slice(&handover.record_type);
    bytes.extend_from_slice(b"t1");
    bytes.extend_from_slice(&handover.payload);
    assert_eq!(
        parse_ndef_message(&bytes).unwrap(),
        vec![aar.clone(), handover.clone()]
    );
    assert_eq!(Handover::from_ndef(&bytes).unwrap(), h);
    // The encoder picks the long form by itself for payloads over 255 bytes.
    let big = NdefRecord {
        payload: vec![0xEE; 300],
        ..aar
    };
    let encoded = encode_ndef_message(&[big.clone(), handover]);
    assert_eq!(encoded[0] & 0x10, 0, "long record");
    assert_eq!(parse_ndef_message(&encoded).unwrap()[0], big);
}

#[test]
fn chunked_and_malformed_messages_give_typed_errors() {
    let tag = full().to_ndef(NdefRecordKind::Mime).unwrap();
    let mut chunked = tag.clone();
    chunked[0] |= 0x20;
    assert_eq!(
        Handover::from_ndef(&chunked),
        Err(NdefError::Chunked { offset: 0 })
    );
    let mut unchanged = tag.clone();
    unchanged[0] = (unchanged[0] & !0x07) | 0x06;
    assert_eq!(
        Handover::from_ndef(&unchanged),
        Err(NdefError::Chunked { offset: 0 })
    );
    let mut reserved = tag.clone();
    reserved[0] |= 0x07;
    assert_eq!(
        Handover::from_ndef(&reserved),
        Err(NdefError::ReservedTnf { offset: 0 })
    );
    assert_eq!(Handover::from_ndef(&[]), Err(NdefError::Empty));
    for cut in 1..tag.len() {
        assert_eq!(
            Handover::from_ndef(&tag[..cut]),
            Err(NdefError::Truncated { offset: 0 }),
            "cut {cut}"
        );
    }
    let mut trailing = tag.clone();
    trailing.push(0);
    assert_eq!(
        Handover::from_ndef(&trailing),
        Err(NdefError::TrailingBytes { offset: tag.len() })
    );
    let mut no_begin = tag.clone();
    no_begin[0] &= !0x80;
    assert_eq!(
        Handover::from_ndef(&no_begin),
        Err(NdefError::MessageBegin { offset: 0 })
    );
    // A URI record (someone's web site) is not a handover.
    let url = [
        0xD1, 0x01, 0x0C, b'U', 0x04, b'e', b'x', b'a', b'm', b'p', b'l', b'e', b'.', b'c', b'o',
        b'm',
    ];
    assert_eq!(
        Handover::from_ndef(&url[..]),
        Err(NdefError::NoHandoverRecord)
    );
    // A payload without the terminal id.
    let mut h = Handover::from_payload(&[0x01, 0x01, 0x01, 0x02, 0x10]);
    assert!(matches!(h, Err(ContentError::InvalidField(_))));
    h = Handover::from_payload(&[0x01, 0x01, 0x01]);
    assert_eq!(h, Err(ContentError::MissingTerminalId));
    h = Handover::from_payload(&[0x01, 0x01, 0x02]);
    assert_eq!(h, Err(ContentError::UnsupportedVersion(2)));
}

#[test]
fn uri_round_trip_and_shape() {
    let h = full();
    let uri = h.to_uri();
    assert!(uri.starts_with(
        "posbridge://pair?v=1&t=00112233445566778899AABBCCDDEEFF&n=Caf%C3%A9%20M%C3%BCller"
    ));
    assert!(uri.contains("&tcp=192.168.1.20:20007&tcp=%5Bfe80::1%5D:22001&pin=3A3A"));
    assert!(uri.contains("&ble=C0:FF:EE:00:12:34&bn=POS-0042&usb=1234:5678:T%200042%2F7&s="));
    assert_eq!(Handover::from_uri(&uri).unwrap(), h);
    // Parameters a newer version adds are skipped.
    assert_eq!(Handover::from_uri(&format!("{uri}&future=42")).unwrap(), h);
    let minimal = Handover::new([1; 16]);
    assert_eq!(
        minimal.to_uri(),
        "posbridge://pair?v=1&t=01010101010101010101010101010101"
    );
    assert_eq!(Handover::from_uri(&minimal.to_uri()).unwrap(), minimal);
}

#[test]
fn bad_uris_give_typed_errors() {
    let t = "t=01010101010101010101010101010101";
    for (uri, err) in [
        (
            "https://example.com/pair?v=1".to_string(),
            UriError::NotPosbridge,
        ),
        (format!("posbridge://pair?{t}"), UriError::Missing("v")),
        ("posbridge://pair?v=1".to_string(), UriError::Missing("t")),
        (
            format!("posbridge://pair?v=1&{t}&{t}"),
            UriError::Duplicate("t"),
        ),
        (
            format!("posbridge://pair?v=1&{t}&tcp=host"),
            UriError::Invalid("tcp"),
        ),
        (
            format!("posbridge://pair?v=1&{t}&tcp=host:99999"),
            UriError::Invalid("tcp"),
        ),
        (
            format!("posbridge://pair?v=1&{t}&n=%ZZ"),
            UriError::BadEscape,
        ),
        (
            format!("posbridge://pair?v=1&{t}&s=SHORT"),
            UriError::Invalid("s"),
        ),
        (
            format!("posbridge://pair?v=1&{t}&usb=12:5678"),
            UriError::Invalid("usb"),
        ),
        (
            format!("posbridge://pair?v=2&{t}"),
            UriError::Content(ContentError::UnsupportedVersion(2)),
        ),
    ] {
        assert_eq!(Handover::from_uri(&uri), Err(err), "{uri}");
    }
}

#[test]
fn the_secret_never_shows_in_debug() {
    let text = format!("{:?}", full());
    assert!(text.contains("PairingSecret(<redacted>)"));
    assert!(!text.contains("92, 92")); // 0x5C bytes
}

fn handover() -> impl Strategy<Value = Handover> {
    let text = "[a-zA-Z0-9 äöü€%&=:/?#\\[\\]-]{1,20}";
    (
        any::<[u8; 16]>(),
        prop::option::of(text),
        prop::collection::vec((text, any::<u16>()), 0..3),
        prop::option::of(any::<[u8; 32]>()),
        prop::option::of(any::<[u8; 6]>()),
        prop::option::of(text),
        prop::collection::vec((any::<u16>(), any::<u16>(), prop::option::of(text)), 0..3),
        prop::option::of(any::<[u8; 16]>()),
    )
        .prop_map(|(id, name, tcp, pin, ble, bn, usb, secret)| Handover {
            terminal_id: id,
            name,
            tcp: tcp
                .into_iter()
                .map(|(host, port)| TcpEndpoint { host, port })
                .collect(),
            tls_pin: pin,
            ble_address: ble,
            ble_name: bn,
            usb: usb
                .into_iter()
                .map(|(vid, pid, serial_number)| UsbTarget {
                    vid,
                    pid,
                    serial_number,
                })
                .collect(),
            pairing_secret: secret.map(PairingSecret::from_bytes),
        })
}

proptest! {
    #[test]
    fn every_handover_round_trips_both_ways(h in handover()) {
        prop_assert_eq!(Handover::from_ndef(&h.to_ndef(NdefRecordKind::Mime).unwrap()).unwrap(), h.clone());
        prop_assert_eq!(Handover::from_ndef(&h.to_ndef(NdefRecordKind::External).unwrap()).unwrap(), h.clone());
        prop_assert_eq!(Handover::from_uri(&h.to_uri()).unwrap(), h);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Handover::from_ndef(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Handover::from_uri(text);
        }
    }
}

#[test]
fn a_full_handover_fits_an_ntag215() {
    let tag = full().to_ndef(NdefRecordKind::Mime).unwrap();
    // NTAG215: 504 bytes of user memory, less the TLV wrapper (4 bytes) on the tag.
    assert!(tag.len() <= 500, "{} bytes", tag.len());
    println!("full handover: {} bytes", tag.len());
}
