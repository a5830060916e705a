//! Capture to pcapng and replay.

use std::time::Duration;

use bytes::BytesMut;
use posbridge_link::*;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn records_both_directions_and_replays_them() {
    let (a, mut b) = memory_pair(Delivery::Stream, 1024, 16);
    let mut a = Capture::new(a, Vec::new()).unwrap();

    a.send_all(b"sale 12.50").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    b.send_all(b"progress: insert card").await.unwrap();
    let mut buf = BytesMut::new();
    a.recv(&mut buf).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    b.send_all(&[0x00, 0xff, 0xa5, 0xc3]).await.unwrap();
    a.recv(&mut buf).await.unwrap();
    let mut got = BytesMut::new();
    b.recv(&mut got).await.unwrap();
    assert_eq!(&got[..], b"sale 12.50");

    let (_, file) = a.into_parts();
    let file = file.unwrap();
    // A pcapng section header, then an interface of link type USER0 (147).
    assert_eq!(&file[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    assert_eq!(&file[8..12], &[0x4d, 0x3c, 0x2b, 0x1a]);
    let idb = u32::from_le_bytes(file[4..8].try_into().unwrap()) as usize;
    assert_eq!(&file[idb..idb + 4], &[1, 0, 0, 0]);
    assert_eq!(
        u16::from_le_bytes([file[idb + 8], file[idb + 9]]),
        LINKTYPE_USER0
    );

    let records = parse_capture(&file).unwrap();
    let summary: Vec<(Direction, &[u8])> =
        records.iter().map(|r| (r.direction, &r.data[..])).collect();
    assert_eq!(
        summary,
        vec![
            (Direction::Outbound, &b"sale 12.50"[..]),
            (Direction::Inbound, &b"progress: insert card"[..]),
            (Direction::Inbound, &[0x00, 0xff, 0xa5, 0xc3][..]),
        ]
    );
    assert_eq!(records[1].time_us - records[0].time_us, 1_500_000);
    assert_eq!(records[2].time_us - records[1].time_us, 500_000);

    // Replay at the recorded pace: the inbound records come back with their spacing.
    let mut replay = ReplayLink::new(&records, Delivery::Stream).paced();
    let start = Instant::now();
    let mut buf = BytesMut::new();
    replay.recv(&mut buf).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    replay.recv(&mut buf).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_millis(2000));
    assert_eq!(&buf[..], b"progress: insert card\x00\xff\xa5\xc3");
    assert!(matches!(
        replay.recv(&mut buf).await,
        Err(LinkError::Closed)
    ));
    replay.send_all(b"sale 12.50").await.unwrap();
    assert_eq!(replay.sent(), b"sale 12.50");
}

#[test]
fn damaged_files_give_typed_errors() {
    assert!(matches!(
        parse_capture(b"not a capture at all"),
        Err(CaptureError::NotPcapng)
    ));
    let mut w = CaptureWriter::new(Vec::new(), "test").unwrap();
    w.write(&Record {
        time_us: 1_764_000_000_000_000,
        direction: Direction::Outbound,
        data: bytes::Bytes::from_static(b"abc"),
    })
    .unwrap();
    let file = w.into_inner();
    let records = parse_capture(&file).unwrap();
    assert_eq!(records[0].time_us, 1_764_000_000_000_000);
    for cut in [file.len() - 1, file.len() - 4, 30] {
        assert!(
            matches!(parse_capture(&file[..cut]), Err(CaptureError::Malformed(_))),
            "cut at {cut}"
        );
    }
    let mut bad = file.clone();
    let last = bad.len() - 4;
    bad[last] ^= 0x10;
    assert!(matches!(
        parse_capture(&bad),
        Err(CaptureError::Malformed(_))
    ));
}
