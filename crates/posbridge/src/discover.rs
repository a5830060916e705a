//! One call that lists every terminal in reach, over every transport compiled in.

use std::time::Duration;

#[cfg(any(feature = "tcp", feature = "serial", feature = "ble", feature = "usb"))]
use posbridge_link::Discovery;
use posbridge_link::{DeviceInfo, LinkKind};
use tokio::task::JoinSet;

/// What to look for, per transport. Transports not compiled in (cargo features) are not
/// searched.
#[derive(Clone, Debug)]
pub struct DiscoverOptions {
    /// How long to listen for announcements (mDNS) and advertisements (BLE). Serial ports and
    /// USB devices are listed at once.
    pub timeout: Duration,
    /// Terminals announcing `_posbridge._tcp` on the LAN (feature `tcp`).
    pub mdns: bool,
    /// Where mDNS runs: the standard port on every interface unless a test or a simulator on
    /// the same machine says otherwise.
    #[cfg(feature = "tcp")]
    pub mdns_config: posbridge_tcp::MdnsConfig,
    /// Serial ports, with their USB ids where they are USB (feature `serial`).
    pub serial: bool,
    /// BLE peripherals matching this filter (feature `ble`); `None` skips the scan.
    #[cfg(feature = "ble")]
    pub ble: Option<posbridge_ble::BleFilter>,
    /// USB devices matching this filter (feature `usb`); `None` skips them.
    #[cfg(feature = "usb")]
    pub usb: Option<posbridge_usb::UsbFilter>,
}

impl Default for DiscoverOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(3),
            mdns: true,
            #[cfg(feature = "tcp")]
            mdns_config: posbridge_tcp::MdnsConfig::default(),
            serial: true,
            #[cfg(feature = "ble")]
            ble: Some(posbridge_ble::BleFilter::default()),
            #[cfg(feature = "usb")]
            usb: Some(posbridge_usb::UsbFilter::default()),
        }
    }
}

impl DiscoverOptions {
    /// Searches no Bluetooth LE (nothing to do without the `ble` feature). For code that cannot
    /// know whether another crate turned the feature on.
    pub fn skip_ble(&mut self) -> &mut Self {
        #[cfg(feature = "ble")]
        {
            self.ble = None;
        }
        self
    }

    /// Searches no USB devices (nothing to do without the `usb` feature).
    pub fn skip_usb(&mut self) -> &mut Self {
        #[cfg(feature = "usb")]
        {
            self.usb = None;
        }
        self
    }
}

/// A transport that could not be searched, and why (Bluetooth off, no permission, no multicast).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiscoveryProblem {
    /// The transport.
    pub kind: LinkKind,
    /// What went wrong and what to do, in the transport's words.
    pub error: String,
}

/// What [`discover`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovered {
    /// Every device found, by transport (TCP, serial, USB, BLE), BLE strongest first.
    pub devices: Vec<DeviceInfo>,
    /// Transports that could not be searched. A missing transport (no Bluetooth adapter, no USB)
    /// is not a problem: it just finds nothing.
    pub problems: Vec<DiscoveryProblem>,
}

type Found = Result<Vec<DeviceInfo>, DiscoveryProblem>;

/// Searches every transport compiled in at once and lists what answers: LAN terminals (mDNS),
/// serial ports, BLE peripherals and USB devices. Takes about `options.timeout`.
pub async fn discover(options: &DiscoverOptions) -> Discovered {
    let mut tasks: JoinSet<(usize, Found)> = JoinSet::new();
    #[allow(unused_variables)]
    let timeout = options.timeout;
    #[cfg(feature = "tcp")]
    if options.mdns {
        let config = options.mdns_config.clone();
        tasks.spawn(async move {
            let found = posbridge_tcp::MdnsDiscovery::new(config)
                .discover(timeout)
                .await
                .map_err(|e| DiscoveryProblem {
                    kind: LinkKind::Tcp,
                    error: e.to_string(),
                });
            (0, found)
        });
    }
    #[cfg(feature = "serial")]
    if options.serial {
        tasks.spawn(async move {
            let found = posbridge_serial::SerialDiscovery
                .discover(timeout)
                .await
                .map_err(|e| DiscoveryProblem {
                    kind: LinkKind::Serial,
                    error: e.to_string(),
                });
            (1, found)
        });
    }
    #[cfg(feature = "usb")]
    if let Some(filter) = options.usb.clone() {
        tasks.spawn(async move {
            let found = posbridge_usb::UsbDiscovery { filter }
                .discover(timeout)
                .await
                .map_err(|e| DiscoveryProblem {
                    kind: LinkKind::Usb,
                    error: e.to_string(),
                });
            (2, found)
        });
    }
    #[cfg(feature = "ble")]
    if let Some(filter) = options.ble.clone() {
        tasks.spawn(async move {
            let found = posbridge_ble::BleDiscovery {
                filter,
                adapter: None,
            }
            .discover(timeout)
            .await
            .map_err(|e| DiscoveryProblem {
                kind: LinkKind::Ble,
                error: e.to_string(),
            });
            (3, found)
        });
    }
    let mut results: Vec<(usize, Found)> = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(r) => results.push(r),
            Err(e) => results.push((
                usize::MAX,
                Err(DiscoveryProblem {
                    kind: LinkKind::Memory,
                    error: format!("a discovery task failed: {e}"),
                }),
            )),
        }
    }
    results.sort_by_key(|r| r.0);
    let mut out = Discovered::default();
    for (_, r) in results {
        match r {
            Ok(devices) => out.devices.extend(devices),
            Err(p) => out.problems.push(p),
        }
    }
    out
}
