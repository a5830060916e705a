//! Serial links for posbridge: RS-232 cables and USB terminals that show up as a serial port
//! (CDC-ACM, or a USB-serial adapter), with the line settings terminals use, enumeration with
//! USB metadata so a terminal can be picked by vendor and product id, and exclusive open.
//!
//! ```no_run
//! use posbridge_serial::{SerialConfig, find_usb, open};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The first port whose USB device is 0x1234:0x5678 (any serial number).
//! let port = find_usb(0x1234, 0x5678, None)?.ok_or("terminal not plugged in")?;
//! let link = open(&port.id, &SerialConfig::default())?;
//! # Ok(()) }
//! ```
//!
//! On Linux, enumeration reads sysfs directly (no libudev needed); elsewhere it asks the
//! operating system through the `serialport` crate.

use std::fmt;
use std::io;
use std::task::{Context, Poll};

use bytes::BytesMut;
use posbridge_link::{
    Delivery, DeviceInfo, Discovery, IoLink, Link, LinkError, LinkInfo, LinkKind,
};
use tokio_serial::{SerialPortBuilderExt, SerialStream};

mod enumerate;
#[cfg(target_os = "linux")]
pub use enumerate::list_ports_in;
pub use enumerate::{find_usb, list_ports};

pub use tokio_serial::{DataBits, FlowControl, Parity, StopBits};

/// docs/transports.md's examples (serial and TCP), compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/transports.md")]
struct TransportsDoctests;

/// Line settings. The default is 115200 baud, 8 data bits, no parity, 1 stop bit, no flow
/// control (8N1), which the native protocol uses; ZVT over serial is 9600 baud 8N2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SerialConfig {
    /// Bits per second.
    pub baud: u32,
    /// Data bits per character.
    pub data_bits: DataBits,
    /// Parity.
    pub parity: Parity,
    /// Stop bits.
    pub stop_bits: StopBits,
    /// Flow control.
    pub flow_control: FlowControl,
    /// Refuse to open a port another program (or another posbridge link) holds, and keep
    /// others out while open. Default on.
    pub exclusive: bool,
}

impl Default for SerialConfig {
    fn default() -> Self {
        Self {
            baud: 115_200,
            data_bits: DataBits::Eight,
            parity: Parity::None,
            stop_bits: StopBits::One,
            flow_control: FlowControl::None,
            exclusive: true,
        }
    }
}

impl SerialConfig {
    /// ZVT's serial settings: 9600 baud, 8 data bits, no parity, 2 stop bits.
    pub fn zvt() -> Self {
        Self {
            baud: 9600,
            stop_bits: StopBits::Two,
            ..Self::default()
        }
    }
}

/// Why a serial port could not be opened or listed.
#[derive(Debug)]
#[non_exhaustive]
pub enum SerialError {
    /// No such port.
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The port is open in another program (or another posbridge link).
    Busy {
        /// The path.
        path: String,
    },
    /// The user may not open the port.
    PermissionDenied {
        /// The path.
        path: String,
    },
    /// The line settings are not supported by the port.
    InvalidConfig {
        /// The path.
        path: String,
        /// What the driver said.
        detail: io::Error,
    },
    /// Any other failure.
    Io {
        /// The path (empty when listing ports).
        path: String,
        /// The cause.
        source: io::Error,
    },
}

impl fmt::Display for SerialError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { path } => write!(
                f,
                "serial port {path} does not exist: check the cable and the port name (`posctl discover` lists ports; USB terminals appear as /dev/ttyACM* or /dev/ttyUSB* on Linux, /dev/cu.* on macOS, COMn on Windows)"
            ),
            Self::Busy { path } => write!(
                f,
                "serial port {path} is in use by another program (a cash-register service, ModemManager, a terminal emulator); close it and try again"
            ),
            Self::PermissionDenied { path } => write!(
                f,
                "no permission to open {path}: on Linux add the user to the `dialout` group (`sudo usermod -aG dialout $USER`, then log in again) or install a udev rule for the terminal's VID/PID (see docs/transports.md)"
            ),
            Self::InvalidConfig { path, detail } => write!(
                f,
                "{path} does not accept these line settings ({detail}); check baud rate, data bits, parity and stop bits against the terminal's manual"
            ),
            Self::Io { path, source } if path.is_empty() => {
                write!(f, "listing serial ports failed: {source}")
            }
            Self::Io { path, source } => write!(f, "serial port {path}: {source}"),
        }
    }
}

impl std::error::Error for SerialError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidConfig { detail, .. } => Some(detail),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn classify(path: &str, e: io::Error) -> SerialError {
    let path = path.to_string();
    match e.kind() {
        io::ErrorKind::NotFound => SerialError::NotFound { path },
        io::ErrorKind::PermissionDenied => SerialError::PermissionDenied { path },
        io::ErrorKind::ResourceBusy => SerialError::Busy { path },
        io::ErrorKind::InvalidInput => SerialError::InvalidConfig { path, detail: e },
        _ => SerialError::Io { path, source: e },
    }
}

fn from_serial(path: &str, e: tokio_serial::Error) -> SerialError {
    match e.kind() {
        // serialport reports a port held by someone else (EBUSY from TIOCEXCL, or the flock
        // already taken) as "no device".
        tokio_serial::ErrorKind::NoDevice if std::path::Path::new(path).exists() => {
            SerialError::Busy {
                path: path.to_string(),
            }
        }
        tokio_serial::ErrorKind::NoDevice => SerialError::NotFound {
            path: path.to_string(),
        },
        tokio_serial::ErrorKind::InvalidInput => SerialError::InvalidConfig {
            path: path.to_string(),
            detail: io::Error::new(io::ErrorKind::InvalidInput, e.description),
        },
        _ => classify(path, e.into()),
    }
}

/// An open serial port as a [`Link`].
#[derive(Debug)]
pub struct SerialLink {
    io: IoLink<SerialStream>,
}

impl SerialLink {
    /// The device path, where the port has one (`/dev/ttyACM0`; the slave side of a
    /// [`pty_pair`] is `/dev/pts/N`, the master side has none).
    pub fn port_path(&self) -> Option<String> {
        use tokio_serial::SerialPort;
        self.io.get_ref().name()
    }

    /// The port underneath (to change the baud rate or read modem lines).
    pub fn port_mut(&mut self) -> &mut SerialStream {
        self.io.get_mut()
    }
}

/// Opens the serial port at `path` (`/dev/ttyACM0`, `/dev/cu.usbmodem1101`, `COM3`).
pub fn open(path: &str, config: &SerialConfig) -> Result<SerialLink, SerialError> {
    // Exclusive mode is `TIOCEXCL` plus an exclusive `flock` on Unix (the lock also keeps out
    // root, which `TIOCEXCL` alone does not); Windows ports are exclusive by nature.
    let builder = tokio_serial::new(path, config.baud)
        .data_bits(config.data_bits)
        .parity(config.parity)
        .stop_bits(config.stop_bits)
        .flow_control(config.flow_control)
        .exclusive(config.exclusive);
    let stream = builder
        .open_native_async()
        .map_err(|e| from_serial(path, e))?;
    Ok(SerialLink {
        io: IoLink::new(stream, info(path, Some(config.baud))),
    })
}

fn info(path: &str, baud: Option<u32>) -> LinkInfo {
    let mut info = LinkInfo::new(LinkKind::Serial, Delivery::Stream, 4096).with_address(path);
    info.bits_per_second = baud.map(u64::from);
    info
}

/// A connected pair of pseudo-terminals as serial links (Unix): real tty drivers, raw mode, no
/// hardware. For tests and the simulator.
#[cfg(unix)]
pub fn pty_pair() -> Result<(SerialLink, SerialLink), SerialError> {
    let (a, b) = SerialStream::pair().map_err(|e| from_serial("pty", e))?;
    let wrap = |s: SerialStream, side: &str| SerialLink {
        io: IoLink::new(s, info(side, None)),
    };
    Ok((wrap(a, "pty:a"), wrap(b, "pty:b")))
}

impl Link for SerialLink {
    fn info(&self) -> &LinkInfo {
        self.io.info()
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, LinkError>> {
        self.io.poll_send(cx, buf)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        self.io.poll_flush(cx)
    }

    fn poll_recv(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Result<usize, LinkError>> {
        match self.io.poll_recv(cx, buf) {
            // A tty whose other end went away reads EIO on Linux: the device is gone.
            Poll::Ready(Err(LinkError::Io(e))) if e.raw_os_error() == Some(5) => {
                Poll::Ready(Err(LinkError::Disconnected(e)))
            }
            other => other,
        }
    }

    fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), LinkError>> {
        self.io.poll_close(cx)
    }
}

/// Discovery of serial ports: [`list_ports`] behind the [`Discovery`] trait (it answers at
/// once; the timeout is not needed).
#[derive(Clone, Copy, Debug, Default)]
pub struct SerialDiscovery;

impl Discovery for SerialDiscovery {
    type Error = SerialError;

    fn discover(
        &mut self,
        _timeout: std::time::Duration,
    ) -> impl Future<Output = Result<Vec<DeviceInfo>, SerialError>> + Send {
        std::future::ready(list_ports())
    }
}
