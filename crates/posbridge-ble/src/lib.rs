//! Bluetooth LE links for posbridge: a GATT central over a UART-style service.
//!
//! Terminals that speak BLE expose a service with one characteristic the phone writes and one it
//! subscribes to — Nordic's UART Service (NUS) by default, other UUIDs by [`ServiceUuids`].
//! [`BleLink`] turns such a connection into a posbridge [`Link`](posbridge_link::Link): writes
//! are cut to `ATT MTU − 3` bytes (at most 510), sent without response where offered with a write
//! request every [`BleConfig::confirm_every`] chunks to pace the sender, and notifications are
//! reassembled into one byte stream. A disconnect surfaces as
//! [`LinkError::Disconnected`](posbridge_link::LinkError::Disconnected).
//!
//! The GATT operations are behind [`GattWriter`] and a channel of [`GattEvent`]s, so the same link
//! logic runs over:
//! * btleplug (feature `btleplug`: BlueZ on Linux, CoreBluetooth, WinRT) — [`BleCentral`] scans
//!   by service UUID and name prefix, connects, discovers, subscribes and reads the MTU;
//! * an app's own Bluetooth stack (a mobile app with its platform API): implement [`GattWriter`]
//!   and feed notifications into the channel;
//! * [`memory_peripheral`], an in-memory NUS peripheral for tests (MTU, slow notifications,
//!   link loss mid-write).
//!
//! ```
//! use bytes::BytesMut;
//! use posbridge_ble::{BleConfig, BleLink, MemoryPeripheralConfig, memory_peripheral};
//! use posbridge_link::LinkExt;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let (gatt, mut terminal, _peripheral) = memory_peripheral(MemoryPeripheralConfig::default());
//! let mut phone = BleLink::new(gatt, BleConfig::default())?;
//! phone.send_all(&[7u8; 100]).await?; // five 20-byte writes at ATT MTU 23
//! let mut got = BytesMut::new();
//! while got.len() < 100 {
//!     terminal.recv(&mut got).await?;
//! }
//! assert_eq!(&got[..], &[7u8; 100][..]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod config;
mod error;
mod gatt;
mod link;
mod memory;

#[cfg(feature = "btleplug")]
mod central;

#[cfg(feature = "btleplug")]
pub use central::{BleCentral, BleDevice, BleDiscovery, BleFilter, BtleplugWriter};
pub use config::{BleConfig, NUS_RX, NUS_SERVICE, NUS_TX, ServiceUuids, WriteMode};
pub use error::BleError;
pub use gatt::{GattConnection, GattError, GattErrorKind, GattEvent, GattWriter};
pub use link::{BleLink, BleStats};
pub use memory::{
    MemoryGattWriter, MemoryPeripheralConfig, PeripheralHandle, PeripheralLog, memory_peripheral,
};
pub use uuid::Uuid;
