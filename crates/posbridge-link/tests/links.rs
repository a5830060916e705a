//! The basic links: memory pairs, the tokio IO adapter, segmentation over a packet pair.

use bytes::BytesMut;
use posbridge_link::*;
use proptest::prelude::*;

#[tokio::test]
async fn memory_pair_carries_every_byte_value_both_ways() {
    let (mut a, mut b) = memory_pair(Delivery::Stream, 64, 4);
    let data: Vec<u8> = (0..=255u8).collect();
    let sender = tokio::spawn(async move {
        a.send_all(&data).await.unwrap();
        let mut back = BytesMut::new();
        while back.len() < 256 {
            a.recv(&mut back).await.unwrap();
        }
        back
    });
    let mut got = BytesMut::new();
    while got.len() < 256 {
        b.recv(&mut got).await.unwrap();
    }
    b.send_all(&got).await.unwrap();
    let back = sender.await.unwrap();
    assert_eq!(&back[..], &(0..=255u8).collect::<Vec<_>>()[..]);
}

#[tokio::test]
async fn packet_links_refuse_oversized_sends_and_keep_boundaries() {
    let (mut a, mut b) = memory_pair(Delivery::Packet, 20, 4);
    let err = a.send_all(&[0u8; 21]).await.unwrap_err();
    assert!(matches!(
        err,
        LinkError::PacketTooLarge { len: 21, mtu: 20 }
    ));
    assert!(!err.is_fatal());
    a.send_all(b"one").await.unwrap();
    a.send_all(b"two").await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
    assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
    assert_eq!(&buf[..], b"onetwo");
}

#[tokio::test]
async fn close_is_seen_after_the_data() {
    let (mut a, mut b) = memory_pair(Delivery::Stream, 64, 4);
    a.send_all(b"last words").await.unwrap();
    a.close().await.unwrap();
    assert!(matches!(a.send_all(b"more").await, Err(LinkError::Closed)));
    let mut buf = BytesMut::new();
    b.recv(&mut buf).await.unwrap();
    assert_eq!(&buf[..], b"last words");
    assert!(matches!(b.recv(&mut buf).await, Err(LinkError::Closed)));
}

#[tokio::test]
async fn dropping_one_end_disconnects_the_other() {
    let (a, mut b) = memory_pair(Delivery::Stream, 64, 4);
    drop(a);
    assert!(matches!(
        b.send_all(b"x").await,
        Err(LinkError::Disconnected(_))
    ));
}

#[tokio::test]
async fn io_link_over_a_tokio_duplex() {
    let (x, y) = tokio::io::duplex(64);
    let info = LinkInfo::new(LinkKind::Memory, Delivery::Stream, 64);
    let mut a = IoLink::new(x, info.clone());
    let mut b = IoLink::new(y, info);
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let expect = big.clone();
    let writer = tokio::spawn(async move {
        a.send_all(&big).await.unwrap();
        a.close().await.unwrap();
    });
    let mut got = BytesMut::new();
    loop {
        match b.recv(&mut got).await {
            Ok(_) => {}
            Err(LinkError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    writer.await.unwrap();
    assert_eq!(&got[..], &expect[..]);
}

#[tokio::test]
async fn segmented_packet_link_carries_large_messages() {
    let (a, b) = memory_pair(Delivery::Packet, 20, 64);
    let mut a = Segmented::new(a, 8192).unwrap();
    let mut b = Segmented::new(b, 8192).unwrap();
    assert_eq!(a.info().delivery, Delivery::Stream);
    let messages: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; 1 + i * 97]).collect();
    let expect = messages.clone();
    let writer = tokio::spawn(async move {
        for m in &messages {
            a.send_all(m).await.unwrap();
        }
        a
    });
    for m in &expect {
        let mut buf = BytesMut::new();
        b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..], &m[..]);
    }
    drop(writer.await.unwrap());
    assert_eq!(b.stats().lost_messages, 0);
}

proptest! {
    #[test]
    fn segmenter_round_trips_any_message_at_any_mtu(
        mtu in 2usize..300,
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 1..8),
    ) {
        let mut s = Segmenter::new(mtu).unwrap();
        let mut r = Reassembler::new(4096);
        let mut packets = Vec::new();
        for m in &messages {
            s.segment(m, &mut packets);
        }
        prop_assert!(packets.iter().all(|p| p.len() <= mtu));
        let out: Vec<Vec<u8>> = packets.iter().filter_map(|p| r.push(p).unwrap()).map(|m| m.to_vec()).collect();
        prop_assert_eq!(out, messages);
    }

    #[test]
    fn reassembler_never_delivers_a_damaged_message(
        mtu in 3usize..64,
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..10),
        lost in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let mut s = Segmenter::new(mtu).unwrap();
        let mut packets = Vec::new();
        for m in &messages {
            s.segment(m, &mut packets);
        }
        let lost: std::collections::BTreeSet<usize> = lost.iter().map(|i| i.index(packets.len())).collect();
        let mut r = Reassembler::new(4096);
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if !lost.contains(&i)
                && let Ok(Some(m)) = r.push(p)
            {
                out.push(m.to_vec());
            }
        }
        // Every delivered message is one that was sent whole, in order.
        let mut it = messages.iter();
        for m in &out {
            prop_assert!(it.any(|s| s == m), "a message that was not sent");
        }
        if lost.is_empty() {
            prop_assert_eq!(out.len(), messages.len());
        }
    }
}
