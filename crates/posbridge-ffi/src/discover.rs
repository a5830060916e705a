//! Terminals in reach, and connecting to one that was found, with posbridge's own transports:
//! the LAN (mDNS) and serial ports everywhere; Bluetooth LE (btleplug) and USB (nusb) where the
//! library is built with the `ble` and `usb` features — desktops and tills. On a phone the app
//! owns the radios: it scans itself and connects with `connect_gatt` or `connect_usb`.

use std::sync::Arc;
use std::time::Duration;

use posbridge_link::LinkKind;

use crate::{PosError, SecretStore, Terminal, invalid, on_runtime};

/// A transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Transport {
    /// TCP on the LAN (found by mDNS).
    Tcp,
    /// TCP with TLS.
    Tls,
    /// A serial port (RS-232, or a USB device seen as one).
    Serial,
    /// Raw USB bulk endpoints.
    Usb,
    /// Bluetooth LE.
    Ble,
    /// In memory (a simulator in the same process).
    Memory,
}

impl From<LinkKind> for Transport {
    fn from(k: LinkKind) -> Self {
        match k {
            LinkKind::Tcp => Self::Tcp,
            LinkKind::Tls => Self::Tls,
            LinkKind::Serial => Self::Serial,
            LinkKind::Usb => Self::Usb,
            LinkKind::Ble => Self::Ble,
            _ => Self::Memory,
        }
    }
}

/// What to search. Each transport searches at once; the whole search takes about `timeout_ms`.
#[derive(Clone, Debug, uniffi::Record)]
pub struct DiscoverOptions {
    /// How long to listen for announcements (mDNS) and advertisements (BLE), milliseconds.
    #[uniffi(default = 3000)]
    pub timeout_ms: u64,
    /// Terminals announcing themselves on the LAN (`_posbridge._tcp`).
    #[uniffi(default = true)]
    pub lan: bool,
    /// Serial ports, with their USB ids where they are USB devices.
    #[uniffi(default = true)]
    pub serial: bool,
    /// Bluetooth LE terminals (library built with `ble`).
    #[uniffi(default = true)]
    pub ble: bool,
    /// Only BLE peripherals whose name starts with this.
    #[uniffi(default = None)]
    pub ble_name_prefix: Option<String>,
    /// USB devices (library built with `usb`).
    #[uniffi(default = true)]
    pub usb: bool,
    /// Only USB devices with this vendor id.
    #[uniffi(default = None)]
    pub usb_vendor_id: Option<u16>,
    /// Only USB devices with this product id.
    #[uniffi(default = None)]
    pub usb_product_id: Option<u16>,
    /// The mDNS port: 5353 unless a test or a simulator on the same machine uses another.
    #[uniffi(default = 5353)]
    pub mdns_port: u16,
    /// Search the LAN on the loopback interface only (a simulator on the same machine).
    #[uniffi(default = false)]
    pub mdns_loopback_only: bool,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        Self {
            timeout_ms: 3000,
            lan: true,
            serial: true,
            ble: true,
            ble_name_prefix: None,
            usb: true,
            usb_vendor_id: None,
            usb_product_id: None,
            mdns_port: posbridge::tcp::MDNS_PORT,
            mdns_loopback_only: false,
        }
    }
}

/// A terminal (or a port that may lead to one) that answered.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Device {
    /// How to reach it.
    pub transport: Transport,
    /// What to connect to: `host:port`, a port path, a BLE address, `vid:pid[:serial]`.
    pub id: String,
    /// Its name, if it announces one.
    pub name: Option<String>,
    /// Signal strength in dBm (BLE).
    pub rssi_dbm: Option<i16>,
    /// USB vendor id (USB devices and USB serial ports).
    pub usb_vendor_id: Option<u16>,
    /// USB product id.
    pub usb_product_id: Option<u16>,
    /// USB serial number.
    pub usb_serial_number: Option<String>,
}

/// A transport that could not be searched, and why (Bluetooth off, no permission, not built in).
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DiscoveryProblem {
    /// The transport.
    pub transport: Transport,
    /// What went wrong and what to do.
    pub detail: String,
}

/// What [`discover`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq, uniffi::Record)]
pub struct Discovered {
    /// Every device found: LAN, serial, USB, then BLE strongest first.
    pub devices: Vec<Device>,
    /// Transports that could not be searched. A machine without the hardware (no Bluetooth
    /// adapter, no USB) just finds nothing there.
    pub problems: Vec<DiscoveryProblem>,
}

#[cfg_attr(all(feature = "ble", feature = "usb"), allow(dead_code))]
fn not_built(transport: Transport, feature: &str, instead: &str) -> DiscoveryProblem {
    DiscoveryProblem {
        transport,
        detail: format!(
            "this library is built without posbridge's own {feature} (feature `{feature}`): {instead}"
        ),
    }
}

/// Lists the terminals in reach over every transport asked for and built in. Takes about
/// `options.timeout_ms`.
#[uniffi::export]
pub async fn discover(options: DiscoverOptions) -> Discovered {
    on_runtime(async move {
        let mut mdns_config = posbridge::tcp::MdnsConfig::default();
        mdns_config
            .set_port(options.mdns_port)
            .set_loopback_only(options.mdns_loopback_only);
        let mut problems = Vec::new();
        #[cfg(feature = "ble")]
        let ble = options.ble.then(|| posbridge::ble::BleFilter {
            name_prefix: options.ble_name_prefix.clone(),
            ..Default::default()
        });
        #[cfg(not(feature = "ble"))]
        if options.ble {
            problems.push(not_built(
                Transport::Ble,
                "ble",
                "on a phone the app scans and connects with connect_gatt",
            ));
        }
        #[cfg(feature = "usb")]
        let usb = options.usb.then(|| posbridge::usb::UsbFilter {
            vid: options.usb_vendor_id,
            pid: options.usb_product_id,
            ..Default::default()
        });
        #[cfg(not(feature = "usb"))]
        if options.usb {
            problems.push(not_built(
                Transport::Usb,
                "usb",
                "on a phone the app opens the device and connects with connect_usb",
            ));
        }
        // The fields of posbridge's BLE and USB exist only when a crate of the build turned them
        // on: the update fills them when they do.
        #[allow(clippy::needless_update)]
        let mut search = posbridge::DiscoverOptions {
            timeout: Duration::from_millis(options.timeout_ms),
            mdns: options.lan,
            mdns_config,
            serial: options.serial,
            ..Default::default()
        };
        // posbridge may have BLE or USB from another crate of the build: searched only when
        // this library asks for them.
        #[cfg(feature = "ble")]
        {
            search.ble = ble;
        }
        #[cfg(not(feature = "ble"))]
        search.skip_ble();
        #[cfg(feature = "usb")]
        {
            search.usb = usb;
        }
        #[cfg(not(feature = "usb"))]
        search.skip_usb();
        let found = posbridge::discover(&search).await;
        let devices = found
            .devices
            .into_iter()
            .map(|d| Device {
                transport: d.kind.into(),
                id: d.id,
                name: d.name,
                rssi_dbm: d.rssi_dbm,
                usb_vendor_id: d.usb.as_ref().map(|u| u.vid),
                usb_product_id: d.usb.as_ref().map(|u| u.pid),
                usb_serial_number: d.usb.and_then(|u| u.serial_number),
            })
            .collect();
        problems.extend(found.problems.into_iter().map(|p| DiscoveryProblem {
            transport: p.kind.into(),
            detail: p.error,
        }));
        Discovered { devices, problems }
    })
    .await
}

/// How to pair with (or reconnect to) a device that [`discover`] found.
#[derive(Clone, Debug, uniffi::Record)]
pub struct DeviceOptions {
    /// Where this till keeps its keys, the pairing and the journal (one directory per terminal).
    pub data_dir: String,
    /// The code the terminal shows, to pair now; `None` to use the pairing kept.
    pub pairing_code: Option<String>,
    /// This till's name, as the terminal shows it.
    pub till_name: String,
    /// TCP: TLS, the terminal's certificate pinned to this SHA-256 fingerprint.
    #[uniffi(default = None)]
    pub tls_pin: Option<String>,
    /// Serial ports: the baud rate (8N1).
    #[uniffi(default = 115200)]
    pub baud: u32,
    /// How long to look for a BLE terminal and connect to it, milliseconds.
    #[uniffi(default = 10000)]
    pub connect_timeout_ms: u64,
}

/// Connects to `device` (as [`discover`] returned it) with posbridge's own transport for it, pairs
/// first when a code is given, and returns the terminal; keys in the app's `store` when given,
/// else in files under the data directory.
#[uniffi::export(default(store = None))]
pub async fn connect_device(
    device: Device,
    options: DeviceOptions,
    store: Option<Arc<dyn SecretStore>>,
) -> Result<Arc<Terminal>, PosError> {
    on_runtime(async move {
        let cannot = |e: &dyn std::fmt::Display| PosError::ConnectFailed {
            detail: format!("{}: {e}", device.id),
        };
        let DeviceOptions {
            data_dir,
            pairing_code,
            till_name,
            tls_pin,
            baud,
            connect_timeout_ms,
        } = options;
        match device.transport {
            Transport::Tcp | Transport::Tls => {
                let config = crate::tcp_config(tls_pin.as_deref())?;
                let link = posbridge::tcp::connect(&device.id, &config)
                    .await
                    .map_err(|e| cannot(&e))?;
                crate::connect_link_stored(link, data_dir, pairing_code, till_name, store).await
            }
            Transport::Serial => {
                let config = posbridge::serial::SerialConfig {
                    baud,
                    ..Default::default()
                };
                let link = posbridge::serial::open(&device.id, &config).map_err(|e| cannot(&e))?;
                crate::connect_link_stored(link, data_dir, pairing_code, till_name, store).await
            }
            #[cfg(feature = "ble")]
            Transport::Ble => {
                let central = posbridge::ble::BleCentral::new()
                    .await
                    .map_err(|e| cannot(&e))?;
                let link = central
                    .connect(
                        &device.id,
                        posbridge::ble::BleConfig::default(),
                        Duration::from_millis(connect_timeout_ms),
                    )
                    .await
                    .map_err(|e| cannot(&e))?;
                crate::connect_link_stored(link, data_dir, pairing_code, till_name, store).await
            }
            #[cfg(feature = "usb")]
            Transport::Usb => {
                let filter = posbridge::usb::UsbFilter {
                    vid: device.usb_vendor_id,
                    pid: device.usb_product_id,
                    serial_number: device.usb_serial_number.clone(),
                    ..Default::default()
                };
                if filter.vid.is_none() || filter.pid.is_none() {
                    return Err(invalid(
                        "a USB device needs its vendor and product id (as discover returns it)",
                    ));
                }
                let link = posbridge::usb::open(&filter, posbridge::usb::UsbConfig::default())
                    .map_err(|e| cannot(&e))?;
                // Messages larger than a packet are segmented (the terminal does the same).
                let link =
                    posbridge_link::Segmented::new(link, 64 * 1024).map_err(crate::failed)?;
                crate::connect_link_stored(link, data_dir, pairing_code, till_name, store).await
            }
            other => {
                let _ = connect_timeout_ms;
                Err(invalid(format!(
                    "{other:?} devices are not reached by posbridge's own transports in this build: {}",
                    match other {
                        Transport::Ble => "build with feature `ble`, or connect with connect_gatt",
                        Transport::Usb => "build with feature `usb`, or connect with connect_usb",
                        _ => "connect to a simulator by its address",
                    }
                )))
            }
        }
    })
    .await
}
