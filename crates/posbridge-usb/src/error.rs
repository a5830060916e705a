//! Errors of finding and opening a USB terminal.

use std::fmt;

/// Why a USB terminal could not be opened. Every variant says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsbError {
    /// No device matches (the filter is described).
    NoDevice(String),
    /// The OS refused access to the device node.
    AccessDenied {
        /// The device node (`/dev/bus/usb/001/004`).
        device: String,
        /// Vendor id, for the udev rule.
        vid: u16,
        /// Product id, for the udev rule.
        pid: u16,
    },
    /// Another program or a kernel driver holds the interface.
    Busy(String),
    /// The device went away while opening it.
    Gone,
    /// No interface of the class with a bulk IN and a bulk OUT endpoint.
    NoEndpoints {
        /// The class looked for.
        class: Option<u8>,
    },
    /// The platform cannot do this (no usbfs, an unsupported driver).
    Unsupported(String),
    /// Anything else.
    Other(String),
}

impl fmt::Display for UsbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoDevice(filter) => write!(
                f,
                "no USB device {filter}; check the cable and that the terminal is in USB mode"
            ),
            Self::AccessDenied { device, vid, pid } => write!(
                f,
                "access to {device} denied; add a udev rule such as SUBSYSTEM==\"usb\", ATTRS{{idVendor}}==\"{vid:04x}\", ATTRS{{idProduct}}==\"{pid:04x}\", MODE=\"0660\", GROUP=\"plugdev\" and replug (Android: request permission through UsbManager)"
            ),
            Self::Busy(m) => write!(
                f,
                "the terminal's USB interface is in use ({m}); close other programs that talk to it"
            ),
            Self::Gone => f.write_str("the USB device disappeared while opening it; replug it"),
            Self::NoEndpoints { class } => match class {
                Some(c) => write!(
                    f,
                    "the device has no interface of class {c:#04x} with bulk IN and OUT endpoints; it is not a terminal of this kind (a CDC-ACM terminal is a serial port: use posbridge-serial)"
                ),
                None => f.write_str("the device has no interface with bulk IN and OUT endpoints"),
            },
            Self::Unsupported(m) => write!(f, "USB not available here: {m}"),
            Self::Other(m) => write!(f, "USB error: {m}"),
        }
    }
}

impl std::error::Error for UsbError {}
