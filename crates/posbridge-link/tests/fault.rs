//! The fault injector under tokio's paused clock: every fault does what it says, reproducibly.

use std::time::Duration;

use bytes::BytesMut;
use posbridge_link::*;
use tokio::time::Instant;

/// Receives until `want` bytes (stream) or packets have arrived, or the link ends.
async fn recv_packets(link: &mut impl Link, count: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while out.len() < count {
        let mut buf = BytesMut::new();
        match tokio::time::timeout(Duration::from_secs(60), link.recv(&mut buf)).await {
            Ok(Ok(_)) => out.push(buf.to_vec()),
            _ => break,
        }
    }
    out
}

async fn recv_bytes(link: &mut impl Link, want: usize) -> (Vec<u8>, Result<(), LinkError>) {
    let mut buf = BytesMut::new();
    while buf.len() < want {
        match tokio::time::timeout(Duration::from_secs(600), link.recv(&mut buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return (buf.to_vec(), Err(e)),
            Err(_) => break,
        }
    }
    (buf.to_vec(), Ok(()))
}

fn packets(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| vec![(i % 251) as u8; 1 + i % 40]).collect()
}

#[tokio::test(start_paused = true)]
async fn nothing_configured_changes_nothing() {
    let (a, mut b) = memory_pair(Delivery::Packet, 64, 1024);
    let mut a = FaultInjector::new(a, FaultConfig::default());
    for p in packets(200) {
        a.send_all(&p).await.unwrap();
    }
    assert_eq!(recv_packets(&mut b, 200).await, packets(200));
    let s = a.stats();
    assert_eq!(
        (s.dropped, s.flipped, s.duplicated, s.reordered),
        (0, 0, 0, 0)
    );
    assert_eq!(
        s.bytes,
        packets(200).iter().map(Vec::len).sum::<usize>() as u64
    );
}

async fn run_packets(seed: u64, faults: Faults) -> (Vec<Vec<u8>>, FaultStats) {
    let (a, mut b) = memory_pair(Delivery::Packet, 64, 4096);
    let mut a = FaultInjector::new(
        a,
        FaultConfig {
            seed,
            send: faults,
            ..FaultConfig::default()
        },
    );
    for p in packets(1000) {
        a.send_all(&p).await.unwrap();
    }
    // Let every delayed packet come due, then close so the receiver sees the end.
    tokio::time::sleep(Duration::from_secs(5)).await;
    a.flush_all().await;
    a.close().await.unwrap();
    (recv_packets(&mut b, usize::MAX).await, a.stats())
}

trait FlushAll {
    async fn flush_all(&mut self);
}

impl<L: Link> FlushAll for FaultInjector<L> {
    async fn flush_all(&mut self) {
        std::future::poll_fn(|cx| self.poll_flush(cx))
            .await
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn drops_are_seeded_and_near_the_rate() {
    let faults = Faults {
        drop: 0.3,
        ..Faults::default()
    };
    let (first, stats) = run_packets(7, faults.clone()).await;
    let (again, _) = run_packets(7, faults.clone()).await;
    let (other, _) = run_packets(8, faults).await;
    assert_eq!(first, again, "same seed, same run");
    assert_ne!(first, other, "another seed, another run");
    assert_eq!(first.len() as u64 + stats.dropped, 1000);
    assert!(
        (230..=370).contains(&stats.dropped),
        "{} dropped of 1000 at p=0.3",
        stats.dropped
    );
    // What arrives is what was sent, in order.
    let sent = packets(1000);
    let mut it = sent.iter();
    for p in &first {
        assert!(it.any(|s| s == p));
    }
}

#[tokio::test(start_paused = true)]
async fn flips_corrupt_single_bits() {
    let (got, stats) = run_packets(
        11,
        Faults {
            flip: 0.01,
            ..Faults::default()
        },
    )
    .await;
    let sent = packets(1000);
    assert_eq!(got.len(), 1000);
    let flipped_bits: u32 = got
        .iter()
        .zip(&sent)
        .flat_map(|(g, s)| g.iter().zip(s).map(|(a, b)| (a ^ b).count_ones()))
        .sum();
    assert_eq!(u64::from(flipped_bits), stats.flipped);
    assert!(stats.flipped > 50, "{} flips", stats.flipped);
}

#[tokio::test(start_paused = true)]
async fn duplicates_and_reordering_keep_every_packet() {
    let (got, stats) = run_packets(
        3,
        Faults {
            duplicate: 0.1,
            reorder: 0.1,
            reorder_delay: Duration::from_millis(5),
            delay: Duration::from_millis(1),
            ..Faults::default()
        },
    )
    .await;
    assert_eq!(got.len() as u64, 1000 + stats.duplicated);
    assert!(stats.duplicated > 50 && stats.reordered > 50);
    let mut sorted_got = got.clone();
    sorted_got.sort();
    sorted_got.dedup();
    let mut sent = packets(1000);
    sent.sort();
    sent.dedup();
    assert_eq!(sorted_got, sent, "nothing lost");
    assert_ne!(got, packets(1000), "order changed");
}

#[tokio::test(start_paused = true)]
async fn serial_line_speed_is_emulated() {
    let (a, mut b) = memory_pair(Delivery::Stream, 4096, 64);
    let mut a = FaultInjector::new(
        a,
        FaultConfig {
            send: Faults::serial_line(9600),
            ..FaultConfig::default()
        },
    );
    let data: Vec<u8> = (0..=255u8).cycle().take(960).collect();
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        a.send_all(&data).await.unwrap();
        a.flush_all().await;
        a
    });
    let mut buf = BytesMut::new();
    let mut pieces = 0;
    let mut first_at = None;
    while buf.len() < 960 {
        let n = b.recv(&mut buf).await.unwrap();
        assert!(
            n <= 16 * 4,
            "bytes trickle in as a serial line delivers them"
        );
        first_at.get_or_insert(start.elapsed());
        pieces += 1;
    }
    let elapsed = start.elapsed();
    // 960 bytes at 960 bytes/s: one second, give or take the last piece.
    assert!(
        elapsed >= Duration::from_millis(990) && elapsed <= Duration::from_millis(1010),
        "{elapsed:?}"
    );
    assert!(
        first_at.unwrap() < Duration::from_millis(30),
        "first bytes arrive early"
    );
    assert!(pieces >= 15);
    assert_eq!(
        &buf[..],
        &(0..=255u8).cycle().take(960).collect::<Vec<_>>()[..]
    );
    drop(sender.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn delay_holds_data_back() {
    let (mut a, b) = memory_pair(Delivery::Stream, 4096, 64);
    let mut b_faulty = FaultInjector::new(
        b,
        FaultConfig {
            recv: Faults {
                delay: Duration::from_millis(250),
                ..Faults::default()
            },
            ..FaultConfig::default()
        },
    );
    let start = Instant::now();
    a.send_all(b"late").await.unwrap();
    let mut buf = BytesMut::new();
    b_faulty.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..], b"late");
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn cut_after_bytes_stops_both_sides() {
    let (a, mut b) = memory_pair(Delivery::Stream, 4096, 64);
    let mut a = FaultInjector::new(
        a,
        FaultConfig {
            cut_after_bytes: Some(100),
            ..FaultConfig::default()
        },
    );
    let data = [0x55u8; 300];
    let err = a.send_all(&data).await.unwrap_err();
    assert!(matches!(err, LinkError::Cut), "{err}");
    assert!(a.stats().cut);
    // The peer got exactly the bytes before the cut, then the link ended.
    let (got, end) = recv_bytes(&mut b, 300).await;
    assert_eq!(got.len(), 100);
    assert!(matches!(end, Err(LinkError::Closed)));
    let mut buf = BytesMut::new();
    assert!(matches!(a.recv(&mut buf).await, Err(LinkError::Cut)));
}

#[tokio::test(start_paused = true)]
async fn cut_after_time_wakes_a_waiting_receiver() {
    let (a, _b) = memory_pair(Delivery::Stream, 4096, 64);
    let mut a = FaultInjector::new(
        a,
        FaultConfig {
            cut_after: Some(Duration::from_secs(3)),
            ..FaultConfig::default()
        },
    );
    let start = Instant::now();
    let mut buf = BytesMut::new();
    assert!(matches!(a.recv(&mut buf).await, Err(LinkError::Cut)));
    assert_eq!(start.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn stream_drops_lose_bytes_not_order() {
    let (a, mut b) = memory_pair(Delivery::Stream, 4096, 64);
    let mut a = FaultInjector::new(
        a,
        FaultConfig {
            seed: 99,
            send: Faults {
                drop: 0.05,
                jitter: Duration::from_millis(3),
                ..Faults::default()
            },
            ..FaultConfig::default()
        },
    );
    let data: Vec<u8> = (0..2000u32).map(|i| (i / 8) as u8).collect();
    for chunk in data.chunks(100) {
        a.send_all(chunk).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.flush_all().await;
    a.close().await.unwrap();
    let (got, _) = recv_bytes(&mut b, 2000).await;
    assert_eq!(got.len() as u64 + a.stats().dropped, 2000);
    // The survivors keep their order: the sequence never goes backwards.
    assert!(got.windows(2).all(|w| w[0] <= w[1]));
}
