//! A custom `Link`: an app that brings its own transport — a mobile app with its platform's
//! Bluetooth stack, a WebSocket, a vendor SDK's byte pipe — implements four poll methods and
//! gets pairing, encryption, reliable delivery, journaling and recovery on top.
//!
//! Here the "platform stack" is a pair of channels moving byte chunks, standing in for the
//! callbacks a mobile Bluetooth API gives.
//!
//! Run: `cargo run -p posbridge-examples --example custom_link`

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use posbridge::journal::MemoryJournal;
use posbridge::{Call, ConnectOptions, NativeAdapter, NativeClient, PaymentTerminal, Payments};
use posbridge_crypto::{LocalIdentity, PairingSecret, PeerId};
use posbridge_link::{Delivery, Link, LinkError, LinkInfo, LinkKind};
use posbridge_session::{ClientSecurity, SessionConfig};
use posbridge_wire::{Amount, Currency, IdempotencyKey};
use tokio::sync::mpsc;

/// The app's transport: what its platform API delivers (`incoming`) and takes (`outgoing`).
struct PlatformLink {
    info: LinkInfo,
    outgoing: mpsc::UnboundedSender<Bytes>,
    incoming: mpsc::UnboundedReceiver<Bytes>,
}

impl Link for PlatformLink {
    fn info(&self) -> &LinkInfo {
        &self.info
    }

    fn poll_send(&mut self, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        // Hand at most one MTU to the platform per call; the session layer calls again.
        let n = buf.len().min(self.info.mtu);
        match self.outgoing.send(Bytes::copy_from_slice(&buf[..n])) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(LinkError::Closed)),
        }
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        match self.incoming.poll_recv(cx) {
            Poll::Ready(Some(chunk)) => {
                buf.extend_from_slice(&chunk);
                Poll::Ready(Ok(chunk.len()))
            }
            Poll::Ready(None) => Poll::Ready(Err(LinkError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_close(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        Poll::Ready(Ok(()))
    }
}

/// Two connected platform links (the phone's and the terminal's end), with a 20-byte MTU like
/// Bluetooth LE at its minimum.
fn platform_pair() -> (PlatformLink, PlatformLink) {
    let (a_tx, b_rx) = mpsc::unbounded_channel();
    let (b_tx, a_rx) = mpsc::unbounded_channel();
    let info =
        |name: &str| LinkInfo::new(LinkKind::Memory, Delivery::Stream, 20).with_address(name);
    (
        PlatformLink {
            info: info("phone"),
            outgoing: a_tx,
            incoming: a_rx,
        },
        PlatformLink {
            info: info("terminal"),
            outgoing: b_tx,
            incoming: b_rx,
        },
    )
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let terminal = common::terminal(Vec::new());
    let (phone, terminal_end) = platform_pair();
    terminal.serve(terminal_end);
    let client = NativeClient::connect(
        phone,
        ConnectOptions {
            session: SessionConfig::default(),
            identity: Arc::new(LocalIdentity::generate(PeerId::random()?, "Phone")?),
            security: ClientSecurity::Pair(PairingSecret::code(&terminal.code)?),
            hello: common::hello("Phone"),
            timeout: Duration::from_secs(30),
        },
    )
    .await?;
    let paired = client.paired().cloned().ok_or("not paired")?;
    let payments = Payments::new(
        NativeAdapter::new(client, Some(paired.peer.signing_key)),
        MemoryJournal::new(),
    );
    let result = payments
        .sale(
            IdempotencyKey(PeerId::random()?.0),
            Amount::new(350, Currency::EUR),
            Call::within(Duration::from_secs(120)),
        )
        .await?;
    println!(
        "sale over the app's own link (20-byte chunks): {:?}, transaction {}",
        result.outcome, result.transaction_id
    );
    let (client, _) = payments.into_parts();
    client.close().await;
    Ok(())
}
