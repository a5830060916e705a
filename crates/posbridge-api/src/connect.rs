//! Making connections, for a terminal that reconnects on its own whatever its protocol.

use std::error::Error;
use std::future::Future;

use crate::Adapter;

/// A stage of making a connection, for state displays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectStage {
    /// Looking for the terminal (a BLE scan, LAN discovery) before opening the link.
    Discovering,
    /// Opening the link.
    Connecting,
    /// The link is open; the protocol's handshake runs (pairing or the secure channel, a ZVT
    /// registration, a nexo login).
    Handshaking,
}

/// Opens a link to a terminal and runs its protocol's handshake, giving the [`Adapter`] the
/// engine runs commands through. `posbridge::ManagedPayments` reconnects with one, for any
/// protocol: `posbridge::NativeConnect` for the native protocol, `posbridge_zvt::ZvtConnect`
/// for ZVT.
pub trait Connect: Send {
    /// The adapter a connection gives.
    type Adapter: Adapter + 'static;
    /// Why connecting failed.
    type Error: Error + Send + Sync + 'static;

    /// Connects, telling `stage` each stage as it begins.
    fn connect(
        &mut self,
        stage: &mut (dyn FnMut(ConnectStage) + Send),
    ) -> impl Future<Output = Result<Self::Adapter, Self::Error>> + Send;
}
