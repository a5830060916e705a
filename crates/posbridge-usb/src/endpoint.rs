//! The bulk endpoint operations a USB link needs, behind a trait.

use std::fmt;
use std::task::{Context, Poll};

/// A pair of bulk endpoints (one OUT, one IN) of a claimed interface, driven by submitting
/// transfers and polling for their completions — the shape of nusb's endpoints, of Android's
/// `UsbRequest` queue and of WinUSB overlapped IO.
pub trait BulkEndpoints: Send + Unpin + 'static {
    /// The OUT endpoint's maximum packet size (64 at full speed, 512 at high speed).
    fn out_max_packet(&self) -> usize;
    /// The IN endpoint's maximum packet size.
    fn in_max_packet(&self) -> usize;
    /// Queues one OUT transfer with `data` (empty: a zero-length packet).
    fn submit_out(&mut self, data: Vec<u8>);
    /// OUT transfers submitted and not yet completed.
    fn out_pending(&self) -> usize;
    /// The next OUT completion, in submission order. Only called while `out_pending() > 0`.
    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransferError>>;
    /// Queues one IN transfer of `len` bytes (a multiple of the maximum packet size).
    fn submit_in(&mut self, len: usize);
    /// IN transfers submitted and not yet completed.
    fn in_pending(&self) -> usize;
    /// The next IN completion with the bytes received (empty: a zero-length packet). Only called
    /// while `in_pending() > 0`.
    fn poll_in(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransferError>>;
    /// Cancels every pending transfer (when the link is closed or dropped).
    fn cancel_all(&mut self);
}

/// Why a transfer failed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferError {
    /// The device was unplugged or reset.
    Disconnected,
    /// The endpoint stalled: the device refused the transfer.
    Stall,
    /// The transfer was cancelled (by closing, or by a timeout).
    Cancelled,
    /// A hardware or protocol fault (CRC errors on a bad cable, babble).
    Fault,
    /// Anything else the platform reported.
    Other(String),
}

impl fmt::Display for TransferError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Disconnected => f.write_str("USB device disconnected"),
            Self::Stall => f.write_str("USB endpoint stalled (the device refused the transfer)"),
            Self::Cancelled => f.write_str("USB transfer cancelled"),
            Self::Fault => f.write_str("USB transfer fault (check the cable and the hub)"),
            Self::Other(m) => write!(f, "USB transfer error: {m}"),
        }
    }
}

impl std::error::Error for TransferError {}
