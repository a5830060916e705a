//! Builds a sale request, frames it as it would cross a serial cable, damages a copy on the
//! way, and shows what the receiver makes of both.
//!
//! Run: `cargo run -p posbridge-examples --example wire_sale`

use bytes::BytesMut;
use posbridge_wire::{
    Amount, Currency, Frame, FrameCodec, IdempotencyKey, Message, Metadata, RequestId,
    TransactionCommand, TransactionRequest,
};

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The app chooses the idempotency key and keeps it across retries.
    let mut metadata = Metadata::new();
    metadata.insert("table", "12")?;
    let sale = TransactionRequest {
        order_ref: Some("ORDER-1001".into()),
        metadata,
        ..TransactionRequest::new(
            RequestId::from_u128(1),
            IdempotencyKey::from_u128(0x5a1e_0000_0000_0000_0000_0000_0000_1001),
            TransactionCommand::Sale {
                amount: Amount::new(1250, Currency::EUR),
                tip: Some(100),
                cashback: None,
            },
        )
    };
    let message = Message::from(sale);
    let payload = message.to_bytes()?;
    println!("sale request: {} bytes of message", payload.len());
    println!("  {}", hex(&payload));

    let codec = FrameCodec::new();
    let mut wire = BytesMut::new();
    codec.encode(&Frame::data(1, payload.freeze()), &mut wire)?;
    println!("in a frame: {} bytes", wire.len());
    println!("  {}", hex(&wire));

    // Line noise first, then a copy with one flipped bit, then the intact frame, delivered in
    // 7-byte pieces the way a slow serial port hands them over.
    let mut stream = vec![0x00, 0xff, 0x13];
    let mut damaged = wire.to_vec();
    damaged[40] ^= 0x04;
    stream.extend_from_slice(&damaged);
    stream.extend_from_slice(&wire);

    let mut receiver = FrameCodec::new();
    let mut buf = BytesMut::new();
    for piece in stream.chunks(7) {
        buf.extend_from_slice(piece);
        loop {
            match receiver.decode(&mut buf) {
                Ok(Some(frame)) => {
                    let decoded = Message::decode(&frame.payload)?;
                    println!("received frame {} intact: {decoded:#?}", frame.seq);
                    assert_eq!(decoded, message);
                }
                Ok(None) => break,
                Err(e) => println!("rejected: {e}"),
            }
        }
    }
    let stats = receiver.stats();
    println!(
        "decoder: {} frame(s) delivered, {} rejected, {} byte(s) skipped",
        stats.frames, stats.errors, stats.skipped_bytes
    );
    Ok(())
}
