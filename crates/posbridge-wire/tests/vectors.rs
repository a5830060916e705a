//! The test vectors of docs/protocol.md, read from docs/test-vectors.txt: each value below must
//! encode to exactly the bytes in the file, and the bytes must decode to exactly the value.
//!
//! To print the file after a deliberate format change:
//! `cargo test -p posbridge-wire --test vectors -- --ignored --nocapture print_vectors`

use bytes::BytesMut;
use posbridge_wire::*;

const FILE: &str = include_str!("../../../docs/test-vectors.txt");

fn hello() -> Message {
    Message::Hello(samples::hello())
}

fn sale() -> Message {
    Message::Transaction(samples::sale_request())
}

fn approved() -> Message {
    Message::TransactionResult(samples::approved_result())
}

fn declined() -> Message {
    Message::TransactionResult(samples::declined_result())
}

fn heartbeat() -> Message {
    Message::Heartbeat(samples::heartbeat())
}

/// (name, message, frame sequence number) for every message vector.
fn message_vectors() -> Vec<(&'static str, Message, u32)> {
    vec![
        ("hello", hello(), 0),
        ("sale-request", sale(), 1),
        ("approved-result", approved(), 2),
        ("declined-result", declined(), 3),
        ("heartbeat", heartbeat(), 4),
        (
            "telemetry-report",
            Message::TelemetryReport(samples::telemetry_report()),
            5,
        ),
        (
            "emv-result",
            Message::TransactionResult(samples::emv_result()),
            6,
        ),
    ]
}

fn frame_hex(frame_type: FrameType, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    FrameCodec::new()
        .encode_parts(frame_type, FrameFlags::NONE, seq, payload, &mut out)
        .unwrap();
    out.to_vec()
}

/// The stream of the "corrupted-frame" vector: a heartbeat in a data frame whose payload has
/// one bit flipped, then an intact ack.
fn corrupted_stream() -> Vec<u8> {
    let payload = heartbeat().to_bytes().unwrap();
    let mut bad = frame_hex(FrameType::Data, 5, &payload);
    bad[HEADER_LEN + 3] ^= 0x01; // the nonce 42 (0x2a) becomes 43 (0x2b)
    bad.extend(frame_hex(FrameType::Ack, 5, &[]));
    bad
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unhex(text: &str) -> Vec<u8> {
    text.split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("bad hex byte {h:?}")))
        .collect()
}

/// The file as `name -> [(key, value)]`, values of continued lines joined.
fn parse_file() -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in FILE.lines() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push((name.to_string(), Vec::new()));
        } else if let Some(rest) = line.strip_prefix("    ") {
            let entry = out
                .last_mut()
                .unwrap()
                .1
                .last_mut()
                .expect("continuation of a key");
            entry.1.push(' ');
            entry.1.push_str(rest.trim());
        } else {
            let (k, v) = line.split_once('=').expect("key = value");
            out.last_mut()
                .expect("a [vector] first")
                .1
                .push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn field<'a>(vectors: &'a [(String, Vec<(String, String)>)], name: &str, key: &str) -> &'a str {
    let (_, fields) = vectors
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("vector [{name}] missing from docs/test-vectors.txt"));
    fields
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("[{name}] has no {key}"))
}

#[test]
fn message_vectors_match_the_file() {
    let file = parse_file();
    for (name, msg, seq) in message_vectors() {
        let bytes = unhex(field(&file, name, "message"));
        assert_eq!(
            hex(&msg.to_bytes().unwrap()),
            hex(&bytes),
            "[{name}] encoding"
        );
        assert_eq!(Message::decode(&bytes).unwrap(), msg, "[{name}] decoding");

        let frame = unhex(field(&file, name, "frame"));
        assert_eq!(
            hex(&frame_hex(FrameType::Data, seq, &bytes)),
            hex(&frame),
            "[{name}] frame"
        );
        let mut buf = BytesMut::from(&frame[..]);
        let decoded = FrameCodec::new().decode(&mut buf).unwrap().unwrap();
        assert_eq!((decoded.frame_type, decoded.seq), (FrameType::Data, seq));
        assert_eq!(&decoded.payload[..], &bytes[..]);
    }
}

#[test]
fn ack_vector_matches_the_file() {
    let file = parse_file();
    let frame = unhex(field(&file, "ack", "frame"));
    assert_eq!(hex(&frame_hex(FrameType::Ack, 2, &[])), hex(&frame));
    let mut buf = BytesMut::from(&frame[..]);
    let f = FrameCodec::new().decode(&mut buf).unwrap().unwrap();
    assert_eq!(
        (f.frame_type, f.seq, f.payload.len()),
        (FrameType::Ack, 2, 0)
    );
}

#[test]
fn corrupted_vector_is_rejected_then_resynchronised() {
    let file = parse_file();
    let stream = unhex(field(&file, "corrupted-frame", "stream"));
    assert_eq!(hex(&corrupted_stream()), hex(&stream));
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::from(&stream[..]);
    let mut seen = Vec::new();
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => seen.push(format!("frame {:?} seq={} len={}", f.frame_type, f.seq, f.payload.len())),
            Ok(None) => break,
            Err(e) => seen.push(match e.kind {
                FrameErrorKind::PayloadChecksum { carried, computed } => {
                    format!("error payload-checksum offset={} carried={carried:08x} computed={computed:08x}", e.offset)
                }
                other => format!("error {other:?} offset={}", e.offset),
            }),
        }
    }
    let expect: Vec<&str> = field(&file, "corrupted-frame", "expect")
        .split(';')
        .map(str::trim)
        .collect();
    assert_eq!(seen, expect);
    // The bad frame is 21 bytes: its sync marker is dropped, the other 19 are scanned past.
    assert_eq!(codec.stats().skipped_bytes, 21);
}

#[test]
#[ignore = "prints docs/test-vectors.txt; run by hand after a deliberate format change"]
fn print_vectors() {
    let wrap = |bytes: &[u8]| bytes.chunks(16).map(hex).collect::<Vec<_>>().join("\n    ");
    for (name, msg, seq) in message_vectors() {
        let bytes = msg.to_bytes().unwrap();
        println!("[{name}]");
        println!("message = {}", wrap(&bytes));
        println!("frame = {}", wrap(&frame_hex(FrameType::Data, seq, &bytes)));
        println!();
    }
    println!(
        "[ack]\nframe = {}\n",
        wrap(&frame_hex(FrameType::Ack, 2, &[]))
    );
    println!("[corrupted-frame]\nstream = {}", wrap(&corrupted_stream()));
}
