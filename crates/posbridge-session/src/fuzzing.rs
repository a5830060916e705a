//! Entry point of the `session_ops` fuzz target (compiled only with `--cfg fuzzing`).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_wire::{
    Amount, Currency, IdempotencyKey, Message, RequestId, StatusQuery, Timestamp,
    TransactionCommand, TransactionRequest,
};

use crate::harness::{capabilities, hello};
use crate::{
    ClientEvent, ClientSecurity, ClientSession, PairingRegistry, SessionConfig, TerminalContext,
    TerminalEvent, TerminalSession,
};

fn identities() -> &'static (Arc<LocalIdentity>, Arc<LocalIdentity>) {
    static IDS: OnceLock<(Arc<LocalIdentity>, Arc<LocalIdentity>)> = OnceLock::new();
    IDS.get_or_init(|| {
        (
            Arc::new(LocalIdentity::generate(PeerId([1; 16]), "terminal").expect("keys")),
            Arc::new(LocalIdentity::generate(PeerId([2; 16]), "client").expect("keys")),
        )
    })
}

/// Drives a client and a terminal with a sequence of operations read from `data`: raw bytes
/// injected into either side, requests, cancels, app completions, time passing, deliveries
/// (whole, cut short or with a flipped bit), closes. Nothing may panic, and the client may
/// never report a result for an idempotency key it did not ask about.
pub fn session_ops(data: &[u8]) {
    let (terminal_id, client_id) = identities();
    let ctx = TerminalContext::new(
        terminal_id.clone(),
        PairingRegistry::with_records([PairingRecord {
            peer: client_id.public_keys(),
            peer_role: Role::Client,
            paired_at: Timestamp(0),
        }]),
        capabilities(),
        16,
    );
    let mut now = Instant::now();
    let mut client = ClientSession::new(
        SessionConfig::default(),
        client_id.clone(),
        ClientSecurity::Paired {
            terminal_key: terminal_id.channel().public(),
        },
        hello(),
        now,
    );
    let mut terminal = TerminalSession::new(SessionConfig::default(), ctx, now);
    let mut asked: Vec<IdempotencyKey> = Vec::new();
    let mut running: Vec<TransactionRequest> = Vec::new();
    let mut last = RequestId::default();
    let mut ops = data.iter().copied();
    while let Some(op) = ops.next() {
        let arg = ops.next().unwrap_or(0);
        match op % 10 {
            0 => {
                let bytes: Vec<u8> = ops.by_ref().take(usize::from(arg)).collect();
                terminal.handle_input(&bytes, now);
            }
            1 => {
                let bytes: Vec<u8> = ops.by_ref().take(usize::from(arg)).collect();
                client.handle_input(&bytes, now);
            }
            2 => {
                let key = IdempotencyKey::from_u128(u128::from(arg % 4));
                let sale = Message::Transaction(TransactionRequest::new(
                    RequestId::default(),
                    key,
                    TransactionCommand::Sale {
                        amount: Amount::new(u64::from(arg) * 10 + 1, Currency::EUR),
                        tip: None,
                        cashback: None,
                    },
                ));
                if let Ok(id) = client.request(sale, now + Duration::from_secs(30), now) {
                    asked.push(key);
                    last = id;
                }
            }
            3 => {
                let _ = client.cancel(last, now);
            }
            4 => {
                now += Duration::from_millis(u64::from(arg) * 50);
                client.handle_timeout(now);
                terminal.handle_timeout(now);
            }
            5 | 6 | 7 => {
                // Deliver both ways; 6 cuts every chunk short, 7 flips a bit in each.
                for _ in 0..4 {
                    while let Some(mut b) = client.poll_transmit(now).map(|b| b.to_vec()) {
                        mangle(op % 10, arg, &mut b);
                        terminal.handle_input(&b, now);
                    }
                    while let Some(mut b) = terminal.poll_transmit(now).map(|b| b.to_vec()) {
                        mangle(op % 10, arg, &mut b);
                        client.handle_input(&b, now);
                    }
                }
            }
            8 => {
                if let Some(request) = running.pop() {
                    let mut r = posbridge_wire::samples::approved_result();
                    r.idempotency_key = request.idempotency_key;
                    let _ = terminal.complete(r, now);
                }
            }
            _ => {
                if arg % 2 == 0 {
                    client.close(now);
                } else {
                    let q = Message::StatusQuery(StatusQuery {
                        request_id: RequestId::default(),
                        idempotency_key: IdempotencyKey::from_u128(u128::from(arg % 4)),
                    });
                    let _ = client.request(q, now + Duration::from_secs(5), now);
                }
            }
        }
        while let Some(e) = terminal.poll_event() {
            if let TerminalEvent::Transaction { request, .. } = e {
                running.push(request);
            }
        }
        while let Some(e) = client.poll_event() {
            if let ClientEvent::Response {
                message: Message::TransactionResult(r),
                ..
            } = e
            {
                assert!(
                    asked.contains(&r.idempotency_key),
                    "a result for a key never asked"
                );
            }
        }
    }
}

fn mangle(op: u8, arg: u8, bytes: &mut Vec<u8>) {
    match op {
        6 => bytes.truncate(usize::from(arg) % (bytes.len() + 1)),
        7 if !bytes.is_empty() => {
            let bit = usize::from(arg) % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        _ => {}
    }
}
