//! The real USB host side through nusb (feature `nusb`).

use std::task::{Context, Poll};

use nusb::descriptors::TransferType;
use nusb::transfer::{Buffer, Bulk, Direction, In, Out};
use nusb::{Endpoint, Interface, MaybeFuture};
use posbridge_link::{DeviceInfo, Discovery, LinkInfo, LinkKind, UsbIds};

use crate::{BulkEndpoints, TransferError, UsbConfig, UsbError, UsbLink};

/// Which USB devices and interface to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbFilter {
    /// Vendor id, if it must match.
    pub vid: Option<u16>,
    /// Product id, if it must match.
    pub pid: Option<u16>,
    /// The class of the interface to claim; vendor-specific (`0xFF`) by default.
    pub interface_class: Option<u8>,
    /// The serial number string, to pick one of several identical terminals.
    pub serial_number: Option<String>,
}

impl Default for UsbFilter {
    fn default() -> Self {
        Self {
            vid: None,
            pid: None,
            interface_class: Some(0xFF),
            serial_number: None,
        }
    }
}

impl UsbFilter {
    /// Devices with this vendor and product id and a vendor-specific interface.
    pub fn vid_pid(vid: u16, pid: u16) -> Self {
        Self {
            vid: Some(vid),
            pid: Some(pid),
            ..Self::default()
        }
    }

    fn describe(&self) -> String {
        let hex = |v: Option<u16>| v.map_or("*".to_string(), |v| format!("{v:04x}"));
        let mut s = format!("{}:{}", hex(self.vid), hex(self.pid));
        if let Some(c) = self.interface_class {
            s.push_str(&format!(" interface class {c:#04x}"));
        }
        if let Some(n) = &self.serial_number {
            s.push_str(&format!(" serial {n}"));
        }
        s
    }

    fn matches(&self, d: &nusb::DeviceInfo) -> bool {
        self.vid.is_none_or(|v| v == d.vendor_id())
            && self.pid.is_none_or(|p| p == d.product_id())
            && self
                .serial_number
                .as_deref()
                .is_none_or(|s| d.serial_number() == Some(s))
            && self
                .interface_class
                .is_none_or(|c| d.interfaces().any(|i| i.class() == c))
    }
}

/// A USB device found by [`list_devices`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsbDevice {
    /// Vendor and product id, serial number and product string.
    pub ids: UsbIds,
    /// Where it is: `bus 1 device 2`.
    pub location: String,
    /// Its manufacturer string, if it has one.
    pub manufacturer: Option<String>,
}

fn location(d: &nusb::DeviceInfo) -> String {
    #[cfg(target_os = "linux")]
    {
        format!("bus {} device {}", d.busnum(), d.device_address())
    }
    #[cfg(not(target_os = "linux"))]
    {
        format!("bus {}", d.bus_id())
    }
}

fn node(d: &nusb::DeviceInfo) -> String {
    #[cfg(target_os = "linux")]
    {
        format!("/dev/bus/usb/{:03}/{:03}", d.busnum(), d.device_address())
    }
    #[cfg(not(target_os = "linux"))]
    {
        location(d)
    }
}

fn describe(d: &nusb::DeviceInfo) -> UsbDevice {
    UsbDevice {
        ids: UsbIds {
            vid: d.vendor_id(),
            pid: d.product_id(),
            serial_number: d.serial_number().map(str::to_string),
            product: d.product_string().map(str::to_string),
        },
        location: location(d),
        manufacturer: d.manufacturer_string().map(str::to_string),
    }
}

fn enumerate() -> Vec<nusb::DeviceInfo> {
    // A system without USB (no usbfs, a container, this kind of test machine) cannot list
    // devices: it has none to offer.
    match nusb::list_devices().wait() {
        Ok(devices) => devices.collect(),
        Err(_) => Vec::new(),
    }
}

/// The devices that match `filter`. A system without USB has none (not an error).
pub fn list_devices(filter: &UsbFilter) -> Vec<UsbDevice> {
    enumerate()
        .iter()
        .filter(|d| filter.matches(d))
        .map(describe)
        .collect()
}

fn open_error(e: nusb::Error, device: &nusb::DeviceInfo, step: &str) -> UsbError {
    match e.kind() {
        nusb::ErrorKind::PermissionDenied => UsbError::AccessDenied {
            device: node(device),
            vid: device.vendor_id(),
            pid: device.product_id(),
        },
        nusb::ErrorKind::Busy => UsbError::Busy(format!("{step}: {e}")),
        nusb::ErrorKind::Disconnected | nusb::ErrorKind::NotFound => UsbError::Gone,
        nusb::ErrorKind::Unsupported => UsbError::Unsupported(format!("{step}: {e}")),
        _ => UsbError::Other(format!("{step}: {e}")),
    }
}

/// Opens the first device that matches `filter`, claims its interface of the filter's class and
/// returns a packet link over that interface's bulk endpoints.
pub fn open(filter: &UsbFilter, config: UsbConfig) -> Result<UsbLink<NusbEndpoints>, UsbError> {
    let devices = enumerate();
    let info = devices
        .iter()
        .find(|d| filter.matches(d))
        .ok_or_else(|| UsbError::NoDevice(filter.describe()))?;
    let device = info
        .open()
        .wait()
        .map_err(|e| open_error(e, info, "open"))?;
    let configuration = device
        .active_configuration()
        .map_err(|e| UsbError::Other(format!("read the active configuration: {e}")))?;
    let class = filter.interface_class;
    let mut chosen = None;
    for alt in configuration.interface_alt_settings() {
        if class.is_some_and(|c| c != alt.class()) {
            continue;
        }
        let (mut ep_in, mut ep_out) = (None, None);
        for ep in alt.endpoints() {
            if ep.transfer_type() != TransferType::Bulk {
                continue;
            }
            match ep.direction() {
                Direction::In => ep_in = ep_in.or(Some(ep.address())),
                Direction::Out => ep_out = ep_out.or(Some(ep.address())),
            }
        }
        if let (Some(i), Some(o)) = (ep_in, ep_out) {
            chosen = Some((alt.interface_number(), alt.alternate_setting(), i, o));
            break;
        }
    }
    let Some((number, alt, ep_in, ep_out)) = chosen else {
        return Err(UsbError::NoEndpoints {
            class: filter.interface_class,
        });
    };
    let interface: Interface = device
        .detach_and_claim_interface(number)
        .wait()
        .map_err(|e| open_error(e, info, "claim the interface"))?;
    if alt != 0 {
        interface
            .set_alt_setting(alt)
            .wait()
            .map_err(|e| open_error(e, info, "select the alternate setting"))?;
    }
    let out = interface
        .endpoint::<Bulk, Out>(ep_out)
        .map_err(|e| open_error(e, info, "open the OUT endpoint"))?;
    let inp = interface
        .endpoint::<Bulk, In>(ep_in)
        .map_err(|e| open_error(e, info, "open the IN endpoint"))?;
    let d = describe(info);
    let mut link_info = LinkInfo::new(LinkKind::Usb, posbridge_link::Delivery::Packet, 0)
        .with_address(d.location.clone());
    link_info.peer_id = d.ids.serial_number.clone();
    link_info.peer_name = d.ids.product.clone();
    Ok(UsbLink::new(
        NusbEndpoints {
            _interface: interface,
            out,
            inp,
        },
        link_info,
        config,
    ))
}

/// [`BulkEndpoints`] over nusb's endpoints.
#[derive(Debug)]
pub struct NusbEndpoints {
    _interface: Interface,
    out: Endpoint<Bulk, Out>,
    inp: Endpoint<Bulk, In>,
}

fn transfer_error(e: nusb::transfer::TransferError) -> TransferError {
    use nusb::transfer::TransferError as E;
    match e {
        E::Cancelled => TransferError::Cancelled,
        E::Stall => TransferError::Stall,
        E::Disconnected => TransferError::Disconnected,
        E::Fault => TransferError::Fault,
        other => TransferError::Other(other.to_string()),
    }
}

impl BulkEndpoints for NusbEndpoints {
    fn out_max_packet(&self) -> usize {
        self.out.max_packet_size()
    }

    fn in_max_packet(&self) -> usize {
        self.inp.max_packet_size()
    }

    fn submit_out(&mut self, data: Vec<u8>) {
        self.out.submit(Buffer::from(data));
    }

    fn out_pending(&self) -> usize {
        self.out.pending()
    }

    fn poll_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransferError>> {
        self.out
            .poll_next_complete(cx)
            .map(|c| c.status.map_err(transfer_error))
    }

    fn submit_in(&mut self, len: usize) {
        self.inp.submit(Buffer::new(len));
    }

    fn in_pending(&self) -> usize {
        self.inp.pending()
    }

    fn poll_in(&mut self, cx: &mut Context<'_>) -> Poll<Result<Vec<u8>, TransferError>> {
        self.inp.poll_next_complete(cx).map(|c| {
            c.status.map_err(transfer_error)?;
            let mut data = c.buffer.into_vec();
            data.truncate(c.actual_len);
            Ok(data)
        })
    }

    fn cancel_all(&mut self) {
        self.out.cancel_all();
        self.inp.cancel_all();
    }
}

/// USB terminals through the [`Discovery`] trait: every device that matches the filter (it
/// answers at once; a system without USB finds nothing).
#[derive(Clone, Debug, Default)]
pub struct UsbDiscovery {
    /// What to look for.
    pub filter: UsbFilter,
}

impl Discovery for UsbDiscovery {
    type Error = UsbError;

    fn discover(
        &mut self,
        _timeout: std::time::Duration,
    ) -> impl Future<Output = Result<Vec<DeviceInfo>, UsbError>> + Send {
        let found = list_devices(&self.filter)
            .into_iter()
            .map(|d| DeviceInfo {
                kind: LinkKind::Usb,
                id: format!(
                    "{:04x}:{:04x}{}",
                    d.ids.vid,
                    d.ids.pid,
                    d.ids
                        .serial_number
                        .as_deref()
                        .map(|s| format!(":{s}"))
                        .unwrap_or_default()
                ),
                name: d.ids.product.clone(),
                rssi_dbm: None,
                usb: Some(d.ids),
            })
            .collect();
        std::future::ready(Ok(found))
    }
}
