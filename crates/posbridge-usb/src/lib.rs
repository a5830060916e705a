//! USB links for posbridge: raw bulk endpoints of vendor-class terminals.
//!
//! Terminals attach over USB in one of two ways. Those that present a CDC-ACM port are serial
//! ports (`posbridge-serial` finds them by VID/PID). Those with a vendor-specific interface
//! (class `0xFF`) and a pair of bulk endpoints are handled here: [`UsbLink`] is a
//! [`Delivery::Packet`](posbridge_link::Delivery::Packet) link whose MTU is the endpoint's maximum
//! packet size (64 bytes at full speed, 512 at high speed). Each send is one packet, followed by
//! a zero-length packet when it is full-size; zero-length packets received are skipped. Wrap it
//! in [`Segmented`](posbridge_link::Segmented) to carry messages of any size.
//!
//! The endpoint IO is behind [`BulkEndpoints`], so the link logic runs over:
//! * nusb (feature `nusb`): [`list_devices`] and [`open`] by VID/PID/interface class and serial
//!   number, with typed errors for no device, access denied (with the udev rule to add), busy
//!   and gone; [`UsbDiscovery`] for the discovery trait;
//! * a platform API an app brings (Android's `UsbDeviceConnection`): implement the trait;
//! * [`memory_usb`], an in-memory bus for tests (unplug, stall, zero-length packets).
//!
//! ```
//! use bytes::BytesMut;
//! use posbridge_link::{Link, LinkExt, LinkInfo, LinkKind, Delivery};
//! use posbridge_usb::{UsbConfig, UsbLink, memory_usb};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let (endpoints, mut device) = memory_usb(512);
//! let info = LinkInfo::new(LinkKind::Usb, Delivery::Packet, 512);
//! let mut host = UsbLink::new(endpoints, info, UsbConfig::default());
//! assert_eq!(host.info().mtu, 512);
//! host.send_all(b"hello").await?;
//! let mut got = BytesMut::new();
//! device.recv(&mut got).await?;
//! assert_eq!(&got[..], b"hello");
//! # Ok::<(), posbridge_link::LinkError>(())
//! # }).unwrap();
//! ```

mod endpoint;
mod error;
mod link;
mod memory;

#[cfg(feature = "nusb")]
mod host;

pub use endpoint::{BulkEndpoints, TransferError};
pub use error::UsbError;
#[cfg(feature = "nusb")]
pub use host::{NusbEndpoints, UsbDevice, UsbDiscovery, UsbFilter, list_devices, open};
pub use link::{UsbConfig, UsbLink, UsbStats};
pub use memory::{MemoryEndpoints, MemoryUsbDevice, memory_usb};
