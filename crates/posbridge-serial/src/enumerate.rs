//! Listing serial ports with their USB identity.

use posbridge_link::{DeviceInfo, LinkKind, UsbIds};

use crate::SerialError;

/// Every serial port the system has, USB ones with their vendor and product id, serial number
/// and product string.
pub fn list_ports() -> Result<Vec<DeviceInfo>, SerialError> {
    #[cfg(target_os = "linux")]
    {
        list_ports_in(std::path::Path::new("/sys"), std::path::Path::new("/dev"))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let ports = tokio_serial::available_ports().map_err(|e| SerialError::Io {
            path: String::new(),
            source: e.into(),
        })?;
        Ok(ports
            .into_iter()
            .map(|p| {
                let usb = match p.port_type {
                    tokio_serial::SerialPortType::UsbPort(u) => Some(UsbIds {
                        vid: u.vid,
                        pid: u.pid,
                        serial_number: u.serial_number,
                        product: u.product,
                    }),
                    _ => None,
                };
                DeviceInfo {
                    kind: LinkKind::Serial,
                    name: usb.as_ref().and_then(|u| u.product.clone()),
                    id: p.port_name,
                    rssi_dbm: None,
                    usb,
                }
            })
            .collect())
    }
}

/// The first port whose USB device has this vendor and product id (and serial number, if
/// given). `Ok(None)` when none is plugged in.
pub fn find_usb(
    vid: u16,
    pid: u16,
    serial_number: Option<&str>,
) -> Result<Option<DeviceInfo>, SerialError> {
    Ok(list_ports()?.into_iter().find(|d| {
        d.usb.as_ref().is_some_and(|u| {
            u.vid == vid
                && u.pid == pid
                && serial_number.is_none_or(|s| u.serial_number.as_deref() == Some(s))
        })
    }))
}

/// [`list_ports`] over a given sysfs and /dev (Linux). Tests point it at a tree of their own.
///
/// A port is a `class/tty/<name>` entry with a `device` link (virtual consoles and ptys have
/// none); legacy `ttyS*` stubs of the 8250 driver without hardware behind them are left out.
/// USB metadata comes from the first ancestor of the device that has `idVendor`.
#[cfg(target_os = "linux")]
pub fn list_ports_in(
    sys: &std::path::Path,
    dev: &std::path::Path,
) -> Result<Vec<DeviceInfo>, SerialError> {
    use std::fs;
    let read = |p: std::path::PathBuf| fs::read_to_string(p).ok().map(|s| s.trim().to_string());
    let sys = &fs::canonicalize(sys).unwrap_or_else(|_| sys.to_path_buf());
    let class = sys.join("class/tty");
    let entries = match fs::read_dir(&class) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SerialError::Io {
                path: class.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Ok(device) = fs::canonicalize(entry.path().join("device")) else {
            continue;
        };
        let driver = fs::read_link(device.join("driver"))
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().to_string()));
        if name.starts_with("ttyS") && driver.as_deref().is_none_or(|d| d == "serial8250") {
            // The 8250 driver registers ttyS0..31 whether or not a UART is there.
            continue;
        }
        let mut usb = None;
        let mut dir = Some(device.as_path());
        while let Some(d) = dir {
            if let (Some(v), Some(p)) = (read(d.join("idVendor")), read(d.join("idProduct"))) {
                if let (Ok(vid), Ok(pid)) =
                    (u16::from_str_radix(&v, 16), u16::from_str_radix(&p, 16))
                {
                    usb = Some(UsbIds {
                        vid,
                        pid,
                        serial_number: read(d.join("serial")),
                        product: read(d.join("product")),
                    });
                }
                break;
            }
            dir = d.parent().filter(|p| p.starts_with(sys));
        }
        out.push(DeviceInfo {
            kind: LinkKind::Serial,
            id: dev.join(&name).display().to_string(),
            name: usb.as_ref().and_then(|u| u.product.clone()),
            rssi_dbm: None,
            usb,
        });
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}
