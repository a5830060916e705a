//! The GATT operations a BLE link needs, behind a trait so the link logic runs against any
//! central: btleplug (feature `btleplug`), an app's own Bluetooth stack, or the in-memory
//! peripheral of the tests.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use tokio::sync::mpsc;

/// Writes to the peripheral's receive characteristic (the "RX" of a Nordic UART Service).
///
/// One writer belongs to one connection; [`BleLink`](crate::BleLink) calls it from a single task,
/// one write at a time.
pub trait GattWriter: Send + 'static {
    /// The ATT MTU in force now. It may grow after connecting, when the MTU exchange completes;
    /// the link reads it before each write.
    fn att_mtu(&self) -> u16;

    /// Writes one characteristic value of at most `att_mtu() - 3` bytes, as a write request
    /// (`with_response`, acknowledged by the peripheral) or a write command (without response).
    fn write(
        &mut self,
        value: Bytes,
        with_response: bool,
    ) -> impl Future<Output = Result<(), GattError>> + Send;

    /// Ends the connection.
    fn disconnect(&mut self) -> impl Future<Output = Result<(), GattError>> + Send;
}

/// What arrives from a connected peripheral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GattEvent {
    /// A notification (or indication) of the transmit characteristic: the next bytes of the
    /// peripheral's stream. Boundaries carry no meaning.
    Notification(Bytes),
    /// The connection is gone (out of range, peripheral reset, supervision timeout), with the
    /// reason the stack gave.
    Disconnected(String),
}

/// A connected, discovered and subscribed peripheral: what [`BleLink::new`](crate::BleLink::new)
/// turns into a link.
#[derive(Debug)]
pub struct GattConnection<W> {
    /// Writes to the receive characteristic.
    pub writer: W,
    /// Notifications of the transmit characteristic and the disconnect event, in order. The
    /// sender side belongs to the backend; dropping it counts as a disconnect.
    pub events: mpsc::Receiver<GattEvent>,
    /// Whether the receive characteristic takes write commands (write without response).
    pub write_without_response: bool,
    /// Whether the receive characteristic takes write requests (write with response).
    pub write_with_response: bool,
    /// The peripheral's address (or platform identifier).
    pub address: String,
    /// The peripheral's advertised name.
    pub name: Option<String>,
}

/// Why a GATT operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GattError {
    /// The category.
    pub kind: GattErrorKind,
    /// The stack's own words.
    pub message: String,
}

/// Categories of [`GattError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GattErrorKind {
    /// The peripheral is no longer connected.
    Disconnected,
    /// The peripheral refused the write (an ATT error such as "invalid attribute value length").
    Rejected,
    /// No answer in time.
    Timeout,
    /// Anything else the stack reported.
    Other,
}

impl GattError {
    /// An error of `kind` with `message`.
    pub fn new(kind: GattErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for GattError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            GattErrorKind::Disconnected => "peripheral disconnected",
            GattErrorKind::Rejected => "peripheral refused the write",
            GattErrorKind::Timeout => "GATT operation timed out",
            GattErrorKind::Other => "GATT error",
        };
        write!(f, "{what}: {}", self.message)
    }
}

impl std::error::Error for GattError {}
