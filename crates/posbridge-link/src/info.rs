//! Descriptions of links and of devices found by discovery.

use std::fmt;

/// The transport under a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LinkKind {
    /// TCP, plain.
    Tcp,
    /// TCP with TLS.
    Tls,
    /// A serial port (RS-232, or USB CDC-ACM seen as a serial port).
    Serial,
    /// Raw USB bulk endpoints.
    Usb,
    /// Bluetooth Low Energy (GATT).
    Ble,
    /// In-memory (tests, simulator, bindings that bring their own transport).
    Memory,
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Serial => "serial",
            Self::Usb => "usb",
            Self::Ble => "ble",
            Self::Memory => "memory",
        })
    }
}

/// How a link delivers bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// A byte stream (TCP, serial): sends may be split and merged arbitrarily on the way.
    Stream,
    /// Packets (USB bulk): each send of at most one MTU arrives as one unit, or not at all.
    Packet,
}

/// What a link is and where it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    /// The transport.
    pub kind: LinkKind,
    /// Stream or packets.
    pub delivery: Delivery,
    /// For packet links the largest packet; for stream links the preferred write size.
    pub mtu: usize,
    /// The peer's stable identity where the transport has one (BLE address, USB serial number).
    pub peer_id: Option<String>,
    /// The peer's human-readable name (BLE local name, USB product).
    pub peer_name: Option<String>,
    /// The peer's address (`host:port`, `/dev/ttyACM0`, `bus 1 device 4`).
    pub address: Option<String>,
    /// The link's speed in bits per second, where known (the baud rate of a serial port).
    pub bits_per_second: Option<u64>,
}

impl LinkInfo {
    /// A description with just kind, delivery and MTU.
    pub fn new(kind: LinkKind, delivery: Delivery, mtu: usize) -> Self {
        Self {
            kind,
            delivery,
            mtu,
            peer_id: None,
            peer_name: None,
            address: None,
            bits_per_second: None,
        }
    }

    /// The same description with an address.
    #[must_use]
    pub fn with_address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }
}

impl fmt::Display for LinkInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(a) = &self.address {
            write!(f, " {a}")?;
        }
        if let Some(n) = &self.peer_name {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// USB identity of a device, for picking a terminal by vendor and product id.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsbIds {
    /// Vendor id.
    pub vid: u16,
    /// Product id.
    pub pid: u16,
    /// Serial number string, if the device has one.
    pub serial_number: Option<String>,
    /// Product string, if the device has one.
    pub product: Option<String>,
}

/// A device found by discovery, before connecting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The transport to reach it.
    pub kind: LinkKind,
    /// What to pass to the transport's connector (`host:port`, a port path, a BLE address).
    pub id: String,
    /// Its name, if it announces one.
    pub name: Option<String>,
    /// Signal strength in dBm (BLE), where known.
    pub rssi_dbm: Option<i16>,
    /// USB identity (USB and USB serial devices).
    pub usb: Option<UsbIds>,
}
