//! What the session tests share: fixed identities (keys are made once per test binary), a
//! client paired with the terminal, and terminal contexts.

#![allow(dead_code)]

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use posbridge_crypto::{LocalIdentity, PairingRecord, PeerId, Role};
use posbridge_session::harness::{capabilities, hello};
use posbridge_session::{
    ClientSecurity, ClientSession, PairingRegistry, SessionConfig, TerminalContext,
};
use posbridge_wire::{Capabilities, Timestamp};

pub(crate) struct Ids {
    pub terminal: Arc<LocalIdentity>,
    pub client: Arc<LocalIdentity>,
    pub stranger: Arc<LocalIdentity>,
}

pub(crate) fn ids() -> &'static Ids {
    static IDS: OnceLock<Ids> = OnceLock::new();
    IDS.get_or_init(|| Ids {
        terminal: Arc::new(LocalIdentity::generate(PeerId([0x7E; 16]), "Till 2").unwrap()),
        client: Arc::new(LocalIdentity::generate(PeerId([0xC1; 16]), "Till 1").unwrap()),
        stranger: Arc::new(LocalIdentity::generate(PeerId([0x66; 16]), "stranger").unwrap()),
    })
}

/// A registry in which the test client is paired.
pub(crate) fn paired_registry() -> PairingRegistry {
    PairingRegistry::with_records([PairingRecord {
        peer: ids().client.public_keys(),
        peer_role: Role::Client,
        paired_at: Timestamp(0),
    }])
}

/// The terminal's context with `registry` and `caps`.
pub(crate) fn context_with(
    registry: Arc<Mutex<PairingRegistry>>,
    caps: Capabilities,
) -> TerminalContext {
    let mut ctx = TerminalContext::new(ids().terminal.clone(), PairingRegistry::new(), caps, 1000);
    ctx.registry = registry;
    ctx
}

/// The terminal's context, the test client paired, the harness capabilities.
pub(crate) fn context() -> TerminalContext {
    context_with(Arc::new(Mutex::new(paired_registry())), capabilities())
}

/// The test client, paired with the test terminal (or holding `terminal_key` instead).
pub(crate) fn paired_client(config: SessionConfig, start: Instant) -> ClientSession {
    client_towards(config, ids().terminal.channel().public(), start)
}

/// A client of `identity`, believing the terminal's key is `terminal_key`.
pub(crate) fn client_as(
    identity: Arc<LocalIdentity>,
    terminal_key: [u8; 32],
    config: SessionConfig,
    start: Instant,
) -> ClientSession {
    ClientSession::new(
        config,
        identity,
        ClientSecurity::Paired { terminal_key },
        hello(),
        start,
    )
}

fn client_towards(config: SessionConfig, terminal_key: [u8; 32], start: Instant) -> ClientSession {
    client_as(ids().client.clone(), terminal_key, config, start)
}
