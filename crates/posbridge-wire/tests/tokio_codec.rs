//! The `tokio_util` codec: frames over an async byte stream, and a damaged frame that does not
//! end the stream.
#![cfg(feature = "tokio-codec")]

use futures_util::{SinkExt, StreamExt};
use posbridge_wire::{Frame, FrameCodec, FrameErrorKind, FrameType};
use tokio::io::AsyncWriteExt;
use tokio_util::codec::{FramedRead, FramedWrite};

#[tokio::test]
async fn frames_cross_a_byte_stream_and_damage_is_an_item() {
    let (client, server) = tokio::io::duplex(64);
    let reader = tokio::spawn(async move {
        let mut framed = FramedRead::new(server, FrameCodec::new());
        let mut items = Vec::new();
        while let Some(item) = framed.next().await {
            items.push(item.expect("no IO error"));
        }
        items
    });

    let mut raw = bytes::BytesMut::new();
    let codec = FrameCodec::new();
    codec
        .encode(&Frame::data(1, &b"first"[..]), &mut raw)
        .unwrap();
    let mut damaged = bytes::BytesMut::new();
    codec
        .encode(&Frame::data(2, &b"second"[..]), &mut damaged)
        .unwrap();
    damaged[14] ^= 0x10;
    raw.extend_from_slice(&damaged);

    let mut writer = FramedWrite::new(client, FrameCodec::new());
    writer.get_mut().write_all(&raw).await.unwrap();
    writer
        .send(Frame::new(FrameType::Close, 3, &b"bye"[..]))
        .await
        .unwrap();
    drop(writer);

    let items = reader.await.unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].as_ref().unwrap().payload, &b"first"[..]);
    assert!(matches!(
        items[1].as_ref().unwrap_err().kind,
        FrameErrorKind::PayloadChecksum { .. }
    ));
    assert_eq!(items[2].as_ref().unwrap().frame_type, FrameType::Close);
}
