//! A Bluetooth LE peripheral the app reaches through its own stack (Android's `BluetoothGatt`,
//! iOS's CoreBluetooth): the app connects, discovers the UART-like service and subscribes; then
//! it hands posbridge the writes, the MTU and the notifications. Chunking to the MTU, pacing
//! write commands with a request now and then, reassembly and everything above stay in Rust
//! (posbridge-ble's link).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use posbridge_ble::{BleConfig, BleLink, GattConnection, GattError, GattErrorKind, GattEvent};
use tokio::sync::mpsc;

use crate::stream::LinkFailure;
use crate::{PosError, Terminal, failed, on_runtime};

/// The app's side of a connected, subscribed peripheral.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait GattPeripheral: Send + Sync {
    /// The ATT MTU in force now (it may grow once the MTU exchange completes).
    fn att_mtu(&self) -> u16;
    /// Writes one value of at most `att_mtu() - 3` bytes to the receive characteristic, as a
    /// write request (`with_response`) or a write command.
    async fn write(&self, value: Vec<u8>, with_response: bool) -> Result<(), LinkFailure>;
    /// Ends the connection.
    async fn disconnect(&self);
}

/// Where the app delivers what its stack reports: every notification of the transmit
/// characteristic, and the disconnect.
#[derive(uniffi::Object)]
pub struct GattNotifier {
    tx: mpsc::Sender<GattEvent>,
    rx: Mutex<Option<mpsc::Receiver<GattEvent>>>,
}

impl std::fmt::Debug for GattNotifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GattNotifier")
    }
}

#[uniffi::export]
impl GattNotifier {
    /// A notifier to wire to the stack's callbacks before connecting.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        let (tx, rx) = mpsc::channel(1024);
        Arc::new(Self {
            tx,
            rx: Mutex::new(Some(rx)),
        })
    }

    /// A notification's value (boundaries carry no meaning). Blocks the stack's callback thread
    /// only while posbridge's queue of 1,024 notifications is full.
    pub fn notification(&self, value: Vec<u8>) {
        let _ = self
            .tx
            .blocking_send(GattEvent::Notification(Bytes::from(value)));
    }

    /// The connection is gone, with the stack's reason.
    pub fn disconnected(&self, reason: String) {
        let _ = self.tx.blocking_send(GattEvent::Disconnected(reason));
    }
}

/// How to pair over an app's peripheral.
#[derive(Clone, Debug, uniffi::Record)]
pub struct GattOptions {
    /// Where this till keeps its keys, the pairing and the journal (one directory per terminal).
    pub data_dir: String,
    /// The code the terminal shows, to pair now; `None` to use the pairing kept in `data_dir`.
    pub pairing_code: Option<String>,
    /// This till's name, as the terminal shows it.
    pub till_name: String,
    /// The peripheral's address or platform identifier.
    pub address: String,
    /// Its advertised name.
    pub name: Option<String>,
    /// The receive characteristic takes write commands (write without response).
    pub write_without_response: bool,
    /// It takes write requests.
    pub write_with_response: bool,
}

/// posbridge-ble's writer over the app's peripheral.
struct ForeignWriter(Arc<dyn GattPeripheral>);

impl posbridge_ble::GattWriter for ForeignWriter {
    fn att_mtu(&self) -> u16 {
        self.0.att_mtu()
    }

    fn write(
        &mut self,
        value: Bytes,
        with_response: bool,
    ) -> impl Future<Output = Result<(), GattError>> + Send {
        let peripheral = self.0.clone();
        async move {
            peripheral
                .write(value.to_vec(), with_response)
                .await
                .map_err(|e| GattError::new(GattErrorKind::Disconnected, e.to_string()))
        }
    }

    fn disconnect(&mut self) -> impl Future<Output = Result<(), GattError>> + Send {
        let peripheral = self.0.clone();
        async move {
            peripheral.disconnect().await;
            Ok(())
        }
    }
}

/// Connects to a terminal through the app's connected peripheral (pairing first when a code is
/// given). `notifier` must already receive the peripheral's notifications. This till's identity
/// and the pairing are kept in the app's `store` when given, else in files under the data
/// directory.
#[uniffi::export(default(store = None))]
pub async fn connect_gatt(
    peripheral: Arc<dyn GattPeripheral>,
    notifier: Arc<GattNotifier>,
    options: GattOptions,
    store: Option<Arc<dyn crate::SecretStore>>,
) -> Result<Arc<Terminal>, PosError> {
    let events = notifier
        .rx
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .ok_or_else(|| {
            crate::invalid("this notifier was used for another connection: make a new one")
        })?;
    on_runtime(async move {
        let link = BleLink::new(
            GattConnection {
                writer: ForeignWriter(peripheral),
                events,
                write_without_response: options.write_without_response,
                write_with_response: options.write_with_response,
                address: options.address,
                name: options.name,
            },
            BleConfig::default(),
        )
        .map_err(failed)?;
        crate::connect_link_stored(
            link,
            options.data_dir,
            options.pairing_code,
            options.till_name,
            store,
        )
        .await
    })
    .await
}
