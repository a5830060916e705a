//! Errors of connecting and scanning.

use std::fmt;

use uuid::Uuid;

use crate::GattError;

/// Why a BLE connection could not be made. Every variant says what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum BleError {
    /// No Bluetooth adapter (or not the one asked for).
    NoAdapter(String),
    /// The adapter is off.
    AdapterOff,
    /// Bluetooth is not allowed for this app (OS permission, or the D-Bus policy on Linux).
    PermissionDenied(String),
    /// No peripheral matched within the scan time.
    NotFound(String),
    /// The peripheral does not offer the service.
    ServiceMissing(Uuid),
    /// The service lacks a characteristic, or it cannot be used as needed.
    CharacteristicMissing {
        /// The characteristic.
        uuid: Uuid,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A step took too long.
    Timeout(&'static str),
    /// The link needs a tokio runtime and was created outside one.
    NoRuntime,
    /// A GATT operation failed.
    Gatt(GattError),
    /// Any other error of the Bluetooth stack.
    Backend(String),
}

impl fmt::Display for BleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoAdapter(m) => write!(
                f,
                "no Bluetooth adapter ({m}); check that the device has Bluetooth and that it is enabled"
            ),
            Self::AdapterOff => f.write_str("the Bluetooth adapter is off; switch Bluetooth on"),
            Self::PermissionDenied(m) => write!(
                f,
                "Bluetooth not permitted ({m}); grant the app Bluetooth permission (Android: BLUETOOTH_SCAN and BLUETOOTH_CONNECT; iOS: NSBluetoothAlwaysUsageDescription; Linux: access to org.bluez on the system bus)"
            ),
            Self::NotFound(m) => write!(
                f,
                "no terminal found ({m}); is it switched on, in range, advertising (not connected to another phone)?"
            ),
            Self::ServiceMissing(u) => write!(
                f,
                "the device does not offer service {u}; it is not a terminal of this kind, or its UUIDs differ (set BleConfig::uuids)"
            ),
            Self::CharacteristicMissing { uuid, problem } => {
                write!(f, "characteristic {uuid}: {problem}")
            }
            Self::Timeout(step) => write!(f, "Bluetooth {step} timed out; move closer and retry"),
            Self::NoRuntime => f.write_str("a BLE link must be created inside a tokio runtime"),
            Self::Gatt(e) => write!(f, "{e}"),
            Self::Backend(m) => write!(f, "Bluetooth stack error: {m}"),
        }
    }
}

impl std::error::Error for BleError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Gatt(e) => Some(e),
            _ => None,
        }
    }
}

impl From<GattError> for BleError {
    fn from(e: GattError) -> Self {
        Self::Gatt(e)
    }
}
