//! Links: how posbridge moves bytes between a phone (or till) and a terminal.
//!
//! Every transport — TCP, TLS, serial, USB, BLE, or an in-memory pair — yields a [`Link`]:
//! bytes in order, with a known MTU and a [`LinkInfo`] that says what and where it is. Stream
//! transports may split and merge writes (the frame decoder in `posbridge-wire` copes); packet
//! transports deliver packets of at most one MTU, and [`Segmented`] turns them into links that
//! take messages of any size.
//!
//! Around the links this crate has the test tools the rest of posbridge relies on: [`memory_pair`] and
//! the seeded [`FaultInjector`] (drop, corrupt, duplicate, delay, reorder, cut, serial speed), and
//! [`Capture`], which records traffic to a pcapng file that tests can replay with [`ReplayLink`].
//!
//! Sits below `posbridge-session`'s driver and above the transport crates (`posbridge-tcp`,
//! `posbridge-serial`, `posbridge-usb`, `posbridge-ble`), which depend on it.

mod capture;
mod error;
mod fault;
mod info;
mod io;
mod link;
mod memory;
mod segment;

pub use capture::{
    Capture, CaptureError, CaptureWriter, Direction, LINKTYPE_USER0, Record, ReplayLink,
    parse_capture, read_capture,
};
pub use error::LinkError;
pub use fault::{FaultConfig, FaultInjector, FaultStats, Faults, SeededRng};
pub use info::{Delivery, DeviceInfo, LinkInfo, LinkKind, UsbIds};
pub use io::IoLink;
pub use link::{Connector, Discovery, Link, LinkExt};
pub use memory::{MemoryLink, memory_pair};
pub use segment::{Reassembler, ReassemblyStats, SegmentError, Segmented, Segmenter};
