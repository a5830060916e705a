//! An in-memory NUS peripheral: the GATT side of a BLE link without any radio, for tests and for
//! apps that want to try the link logic. Its far side is a stream [`MemoryLink`] — where a
//! terminal (or the simulator) sits, the way a real NUS bridge passes bytes to a UART.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use posbridge_link::{Delivery, LinkExt, MemoryLink, memory_pair};
use tokio::sync::mpsc;

use crate::{GattConnection, GattError, GattErrorKind, GattEvent, GattWriter};

/// How the in-memory peripheral behaves.
#[derive(Clone, Debug)]
pub struct MemoryPeripheralConfig {
    /// The ATT MTU (23 is the minimum of the specification; 247 is common with data length
    /// extension). Writes longer than MTU − 3 are refused, and notifications are cut to MTU − 3.
    pub att_mtu: u16,
    /// Whether the receive characteristic takes write commands.
    pub write_without_response: bool,
    /// A pause before every notification (a slow peripheral).
    pub notify_interval: Duration,
    /// After this many writes, the next write fails and the peripheral disconnects (a link lost
    /// in the middle of a message).
    pub disconnect_after_writes: Option<u64>,
    /// The peripheral's address.
    pub address: String,
    /// Its name.
    pub name: String,
}

impl Default for MemoryPeripheralConfig {
    fn default() -> Self {
        Self {
            att_mtu: 23,
            write_without_response: true,
            notify_interval: Duration::ZERO,
            disconnect_after_writes: None,
            address: "00:00:00:00:00:01".into(),
            name: "MemoryPOS".into(),
        }
    }
}

/// What the in-memory peripheral saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeripheralLog {
    /// Every write, with its length and whether it asked for a response.
    pub writes: Vec<(usize, bool)>,
    /// Notifications sent, with their length.
    pub notifications: Vec<usize>,
    /// Whether the central disconnected.
    pub central_disconnected: bool,
}

/// Control of a running in-memory peripheral.
#[derive(Clone, Debug)]
pub struct PeripheralHandle {
    log: Arc<Mutex<PeripheralLog>>,
    events: mpsc::Sender<GattEvent>,
}

impl PeripheralHandle {
    /// What the peripheral saw so far.
    pub fn log(&self) -> PeripheralLog {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Simulates link loss (out of range, supervision timeout): the central gets a disconnect.
    pub async fn drop_connection(&self, reason: &str) {
        let _ = self
            .events
            .send(GattEvent::Disconnected(reason.to_string()))
            .await;
    }
}

/// The writer of an in-memory peripheral connection.
#[derive(Debug)]
pub struct MemoryGattWriter {
    config: MemoryPeripheralConfig,
    to_far: mpsc::Sender<Bytes>,
    events: mpsc::Sender<GattEvent>,
    log: Arc<Mutex<PeripheralLog>>,
    writes: u64,
    gone: bool,
}

impl GattWriter for MemoryGattWriter {
    fn att_mtu(&self) -> u16 {
        self.config.att_mtu
    }

    async fn write(&mut self, value: Bytes, with_response: bool) -> Result<(), GattError> {
        if self.gone {
            return Err(GattError::new(GattErrorKind::Disconnected, "not connected"));
        }
        let max = usize::from(self.config.att_mtu) - 3;
        if value.len() > max {
            return Err(GattError::new(
                GattErrorKind::Rejected,
                format!("invalid attribute value length {} > {max}", value.len()),
            ));
        }
        if !with_response && !self.config.write_without_response {
            return Err(GattError::new(
                GattErrorKind::Rejected,
                "write without response not permitted",
            ));
        }
        if self
            .config
            .disconnect_after_writes
            .is_some_and(|n| self.writes >= n)
        {
            self.gone = true;
            let _ = self
                .events
                .send(GattEvent::Disconnected("connection timeout".into()))
                .await;
            return Err(GattError::new(
                GattErrorKind::Disconnected,
                "link lost during write",
            ));
        }
        self.writes += 1;
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .writes
            .push((value.len(), with_response));
        self.to_far
            .send(value)
            .await
            .map_err(|_| GattError::new(GattErrorKind::Disconnected, "peripheral stopped"))
    }

    async fn disconnect(&mut self) -> Result<(), GattError> {
        self.gone = true;
        self.log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .central_disconnected = true;
        Ok(())
    }
}

/// Starts an in-memory NUS peripheral on the current tokio runtime. Returns the central's view
/// (for [`BleLink::new`](crate::BleLink::new)), the far side's stream link, and a handle.
pub fn memory_peripheral(
    config: MemoryPeripheralConfig,
) -> (
    GattConnection<MemoryGattWriter>,
    MemoryLink,
    PeripheralHandle,
) {
    let (events_tx, events_rx) = mpsc::channel(256);
    let (to_far, mut from_central) = mpsc::channel::<Bytes>(64);
    let (far_inner, far) = memory_pair(Delivery::Stream, 4096, 64);
    let log = Arc::new(Mutex::new(PeripheralLog::default()));
    let handle = PeripheralHandle {
        log: log.clone(),
        events: events_tx.clone(),
    };
    let chunk = usize::from(config.att_mtu.max(23)) - 3;
    let interval = config.notify_interval;
    let notify = events_tx.clone();
    let notify_log = log.clone();
    tokio::spawn(async move {
        let (mut far_tx, mut far_rx) = (far_inner, BytesMut::new());
        loop {
            tokio::select! {
                written = from_central.recv() => match written {
                    Some(bytes) => {
                        if far_tx.send_all(&bytes).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                got = far_tx.recv(&mut far_rx) => {
                    if got.is_err() {
                        let _ = notify.send(GattEvent::Disconnected("peripheral closed".into())).await;
                        break;
                    }
                    while !far_rx.is_empty() {
                        let piece = far_rx.split_to(chunk.min(far_rx.len())).freeze();
                        if !interval.is_zero() {
                            tokio::time::sleep(interval).await;
                        }
                        notify_log.lock().unwrap_or_else(|p| p.into_inner()).notifications.push(piece.len());
                        if notify.send(GattEvent::Notification(piece)).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    let connection = GattConnection {
        writer: MemoryGattWriter {
            config: config.clone(),
            to_far,
            events: events_tx,
            log,
            writes: 0,
            gone: false,
        },
        events: events_rx,
        write_without_response: config.write_without_response,
        write_with_response: true,
        address: config.address.clone(),
        name: Some(config.name.clone()),
    };
    (connection, far, handle)
}
