//! The real central, through btleplug (feature `btleplug`).

use std::time::Duration;

use btleplug::api::{
    Central, CentralEvent, CentralState, CharPropFlags, Characteristic, Manager as _,
    Peripheral as _, ScanFilter, WriteType,
};
use btleplug::platform::{Adapter, Manager, Peripheral, PeripheralId};
use bytes::Bytes;
use futures_util::StreamExt;
use posbridge_link::{DeviceInfo, Discovery, LinkKind};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

use crate::{
    BleConfig, BleError, BleLink, GattConnection, GattError, GattErrorKind, GattEvent, GattWriter,
    NUS_SERVICE,
};

/// Which peripherals a scan reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BleFilter {
    /// The service the peripheral must advertise (NUS by default); `None` reports everything.
    pub service: Option<Uuid>,
    /// The start of its advertised name (`"PAX-"`, `"Sim"`), if any.
    pub name_prefix: Option<String>,
}

impl Default for BleFilter {
    fn default() -> Self {
        Self {
            service: Some(NUS_SERVICE),
            name_prefix: None,
        }
    }
}

impl BleFilter {
    fn matches(&self, name: Option<&str>, services: &[Uuid]) -> bool {
        self.service.is_none_or(|s| services.contains(&s))
            && self
                .name_prefix
                .as_deref()
                .is_none_or(|p| name.is_some_and(|n| n.starts_with(p)))
    }
}

/// A peripheral seen by a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BleDevice {
    /// Its address (what [`BleCentral::connect`] takes).
    pub address: String,
    /// Its advertised name.
    pub name: Option<String>,
    /// Signal strength of the last advertisement, in dBm.
    pub rssi_dbm: Option<i16>,
    /// The services it advertises.
    pub services: Vec<Uuid>,
}

/// A Bluetooth adapter acting as central: scans for terminals and connects to them.
#[derive(Clone, Debug)]
pub struct BleCentral {
    adapter: Adapter,
    /// One adapter event stream per central, shared by every scan and connection (btleplug's
    /// BlueZ backend panics in a task of its own when one of several streams sharing a D-Bus
    /// match is dropped).
    events: broadcast::Sender<CentralEvent>,
    _pump: Arc<Pump>,
}

#[derive(Debug)]
struct Pump(tokio::task::JoinHandle<()>);

impl Drop for Pump {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn backend(e: btleplug::Error) -> BleError {
    match e {
        btleplug::Error::PermissionDenied => BleError::PermissionDenied(e.to_string()),
        btleplug::Error::DeviceNotFound => BleError::NotFound(e.to_string()),
        btleplug::Error::TimedOut(_) => BleError::Timeout("operation"),
        btleplug::Error::NotConnected => {
            BleError::Gatt(GattError::new(GattErrorKind::Disconnected, e.to_string()))
        }
        other => BleError::Backend(other.to_string()),
    }
}

fn gatt(e: btleplug::Error) -> GattError {
    let kind = match &e {
        btleplug::Error::NotConnected | btleplug::Error::DeviceNotFound => {
            GattErrorKind::Disconnected
        }
        btleplug::Error::TimedOut(_) => GattErrorKind::Timeout,
        btleplug::Error::NotSupported(_) | btleplug::Error::InvalidBDAddr(_) => {
            GattErrorKind::Rejected
        }
        _ => GattErrorKind::Other,
    };
    GattError::new(kind, e.to_string())
}

impl BleCentral {
    /// The first adapter of the system (on Linux, BlueZ's first `hciN`), which must be powered.
    pub async fn new() -> Result<Self, BleError> {
        Self::pick(None).await
    }

    /// The adapter named `name` (on Linux `hci0`, `hci1`, …).
    pub async fn with_adapter(name: &str) -> Result<Self, BleError> {
        Self::pick(Some(name)).await
    }

    async fn pick(name: Option<&str>) -> Result<Self, BleError> {
        let manager = Manager::new().await.map_err(|e| match e {
            btleplug::Error::PermissionDenied => BleError::PermissionDenied(e.to_string()),
            other => BleError::NoAdapter(other.to_string()),
        })?;
        let adapters = manager.adapters().await.map_err(backend)?;
        let mut seen = Vec::new();
        for adapter in adapters {
            let info = adapter.adapter_info().await.map_err(backend)?;
            // BlueZ: "hci0 (usb:v1D6Bp0246d0542)".
            if name.is_none_or(|n| info.split_whitespace().next() == Some(n)) {
                if adapter.adapter_state().await.map_err(backend)? != CentralState::PoweredOn {
                    return Err(BleError::AdapterOff);
                }
                let mut stream = adapter.events().await.map_err(backend)?;
                let (events, _) = broadcast::channel(1024);
                let tx = events.clone();
                let pump = tokio::spawn(async move {
                    while let Some(event) = stream.next().await {
                        let _ = tx.send(event);
                    }
                });
                return Ok(Self {
                    adapter,
                    events,
                    _pump: Arc::new(Pump(pump)),
                });
            }
            seen.push(info);
        }
        Err(BleError::NoAdapter(match name {
            Some(n) => format!("no adapter {n}; have {seen:?}"),
            None => "the system has none".into(),
        }))
    }

    async fn describe(p: &Peripheral) -> Result<Option<BleDevice>, BleError> {
        let Some(props) = p.properties().await.map_err(backend)? else {
            return Ok(None);
        };
        Ok(Some(BleDevice {
            address: props.address.to_string(),
            name: props.local_name,
            rssi_dbm: props.rssi,
            services: props.services,
        }))
    }

    /// Scans for `time` and returns every peripheral that matches `filter`, strongest signal
    /// first. An empty list is not an error.
    pub async fn scan(
        &self,
        filter: &BleFilter,
        time: Duration,
    ) -> Result<Vec<BleDevice>, BleError> {
        let scan = ScanFilter {
            services: filter.service.into_iter().collect(),
        };
        self.adapter.start_scan(scan).await.map_err(backend)?;
        tokio::time::sleep(time).await;
        let found = self.adapter.peripherals().await.map_err(backend);
        let _ = self.adapter.stop_scan().await;
        let mut out = Vec::new();
        for p in found? {
            if let Some(d) = Self::describe(&p).await?
                && filter.matches(d.name.as_deref(), &d.services)
            {
                out.push(d);
            }
        }
        out.sort_by(|a, b| b.rssi_dbm.cmp(&a.rssi_dbm).then(a.address.cmp(&b.address)));
        Ok(out)
    }

    /// The first peripheral that matches `filter`, scanning for at most `time` (returns as soon
    /// as one is seen).
    pub async fn find(&self, filter: &BleFilter, time: Duration) -> Result<BleDevice, BleError> {
        let p = self
            .find_peripheral(
                |d| filter.matches(d.name.as_deref(), &d.services),
                filter.service,
                time,
            )
            .await?;
        Self::describe(&p)
            .await?
            .ok_or_else(|| BleError::NotFound("the device vanished".into()))
    }

    async fn find_peripheral(
        &self,
        hit: impl Fn(&BleDevice) -> bool,
        service: Option<Uuid>,
        time: Duration,
    ) -> Result<Peripheral, BleError> {
        let mut events = self.events.subscribe();
        let scan = ScanFilter {
            services: service.into_iter().collect(),
        };
        self.adapter.start_scan(scan).await.map_err(backend)?;
        let search = async {
            // BlueZ remembers devices seen before: they are not "discovered" again.
            for p in self.adapter.peripherals().await.map_err(backend)? {
                if Self::describe(&p).await?.is_some_and(|d| hit(&d)) {
                    return Ok(p);
                }
            }
            // Besides the events, everything the adapter knows is looked at again every second:
            // a name that arrives in a later scan response changes a device's properties
            // without always making an event (seen under BlueZ on a slow machine).
            let mut again = tokio::time::interval(Duration::from_secs(1));
            again.tick().await;
            loop {
                let event = tokio::select! {
                    e = events.recv() => e,
                    _ = again.tick() => Err(broadcast::error::RecvError::Lagged(0)),
                };
                let event = match event {
                    Ok(e) => e,
                    // Fell behind, or time to look again: everything the adapter knows.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        for p in self.adapter.peripherals().await.map_err(backend)? {
                            if Self::describe(&p).await?.is_some_and(|d| hit(&d)) {
                                return Ok(p);
                            }
                        }
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                let id = match event {
                    CentralEvent::DeviceDiscovered(id) | CentralEvent::DeviceUpdated(id) => id,
                    CentralEvent::ServicesAdvertisement { id, .. } => id,
                    _ => continue,
                };
                let p = self.adapter.peripheral(&id).await.map_err(backend)?;
                if Self::describe(&p).await?.is_some_and(|d| hit(&d)) {
                    return Ok(p);
                }
            }
            Err(BleError::Backend("the adapter's event stream ended".into()))
        };
        let found = tokio::time::timeout(time, search).await;
        let _ = self.adapter.stop_scan().await;
        match found {
            Ok(r) => r,
            Err(_) => Err(BleError::NotFound(format!(
                "nothing matching within {time:?}"
            ))),
        }
    }

    /// Connects to the peripheral at `address` (scanning for it for at most `time` if the
    /// adapter has not seen it), discovers the service, subscribes to the notify
    /// characteristic, reads the MTU and returns the link.
    pub async fn connect(
        &self,
        address: &str,
        config: BleConfig,
        time: Duration,
    ) -> Result<BleLink, BleError> {
        let want = address.to_ascii_uppercase();
        let p = self
            .find_peripheral(|d| d.address.eq_ignore_ascii_case(&want), None, time)
            .await?;
        self.connect_peripheral(p, config, time).await
    }

    /// Connects to the first peripheral that matches `filter`.
    pub async fn connect_first(
        &self,
        filter: &BleFilter,
        config: BleConfig,
        time: Duration,
    ) -> Result<BleLink, BleError> {
        let p = self
            .find_peripheral(
                |d| filter.matches(d.name.as_deref(), &d.services),
                filter.service,
                time,
            )
            .await?;
        self.connect_peripheral(p, config, time).await
    }

    async fn connect_peripheral(
        &self,
        p: Peripheral,
        config: BleConfig,
        time: Duration,
    ) -> Result<BleLink, BleError> {
        let described = Self::describe(&p).await?;
        let mut events = self.events.subscribe();
        if !p.is_connected().await.map_err(backend)? {
            tokio::time::timeout(time, p.connect())
                .await
                .map_err(|_| BleError::Timeout("connect"))?
                .map_err(backend)?;
        }
        // GATT objects vanish on every disconnect: discover again on every connect.
        tokio::time::timeout(time, p.discover_services())
            .await
            .map_err(|_| BleError::Timeout("service discovery"))?
            .map_err(backend)?;
        let uuids = config.uuids;
        if !p.services().iter().any(|s| s.uuid == uuids.service) {
            let _ = p.disconnect().await;
            return Err(BleError::ServiceMissing(uuids.service));
        }
        let chars = p.characteristics();
        let find = |uuid: Uuid| -> Result<Characteristic, BleError> {
            chars
                .iter()
                .find(|c| c.uuid == uuid && c.service_uuid == uuids.service)
                .cloned()
                .ok_or(BleError::CharacteristicMissing {
                    uuid,
                    problem: "not offered by the service",
                })
        };
        let (write, notify) = match (find(uuids.write), find(uuids.notify)) {
            (Ok(w), Ok(n)) => (w, n),
            (Err(e), _) | (_, Err(e)) => {
                let _ = p.disconnect().await;
                return Err(e);
            }
        };
        if !notify
            .properties
            .intersects(CharPropFlags::NOTIFY | CharPropFlags::INDICATE)
        {
            let _ = p.disconnect().await;
            return Err(BleError::CharacteristicMissing {
                uuid: uuids.notify,
                problem: "neither notifies nor indicates",
            });
        }
        let mut notifications = p.notifications().await.map_err(backend)?;
        tokio::time::timeout(time, p.subscribe(&notify))
            .await
            .map_err(|_| BleError::Timeout("subscribe"))?
            .map_err(backend)?;
        let (tx, rx) = mpsc::channel(1024);
        let id: PeripheralId = p.id();
        let notify_uuid = uuids.notify;
        let watch = p.clone();
        // The link may outlive this central (an app keeps the link, not the central): the
        // adapter's event pump must run as long as a connection watches it.
        let pump = self._pump.clone();
        tokio::spawn(async move {
            let _pump = pump;
            loop {
                tokio::select! {
                    n = notifications.next() => match n {
                        Some(n) if n.uuid == notify_uuid => {
                            if tx.send(GattEvent::Notification(Bytes::from(n.value))).await.is_err() {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => {
                            let _ = tx.send(GattEvent::Disconnected("notification stream ended".into())).await;
                            break;
                        }
                    },
                    e = events.recv() => match e {
                        Ok(CentralEvent::DeviceDisconnected(gone)) if gone == id => {
                            let _ = tx.send(GattEvent::Disconnected("the peripheral disconnected".into())).await;
                            break;
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            // A disconnect may have been among the events missed.
                            if !watch.is_connected().await.unwrap_or(false) {
                                let _ = tx.send(GattEvent::Disconnected("the peripheral disconnected".into())).await;
                                break;
                            }
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            let _ = tx.send(GattEvent::Disconnected("the adapter's event stream ended".into())).await;
                            break;
                        }
                    },
                    () = tx.closed() => break,
                }
            }
        });
        let connection = GattConnection {
            write_without_response: write
                .properties
                .contains(CharPropFlags::WRITE_WITHOUT_RESPONSE),
            write_with_response: write.properties.contains(CharPropFlags::WRITE),
            address: p.address().to_string(),
            name: described.and_then(|d| d.name),
            writer: BtleplugWriter {
                peripheral: p,
                characteristic: write,
            },
            events: rx,
        };
        BleLink::new(connection, config)
    }
}

/// [`GattWriter`] over a btleplug peripheral.
#[derive(Debug)]
pub struct BtleplugWriter {
    peripheral: Peripheral,
    characteristic: Characteristic,
}

impl GattWriter for BtleplugWriter {
    fn att_mtu(&self) -> u16 {
        self.peripheral.mtu()
    }

    async fn write(&mut self, value: Bytes, with_response: bool) -> Result<(), GattError> {
        let kind = if with_response {
            WriteType::WithResponse
        } else {
            WriteType::WithoutResponse
        };
        self.peripheral
            .write(&self.characteristic, &value, kind)
            .await
            .map_err(gatt)
    }

    async fn disconnect(&mut self) -> Result<(), GattError> {
        self.peripheral.disconnect().await.map_err(gatt)
    }
}

/// BLE peripherals through the [`Discovery`] trait: a scan with a [`BleFilter`]. A machine
/// without a Bluetooth adapter finds nothing (an empty list, not an error); an adapter that is
/// off or not permitted is an error, because the user can fix it.
#[derive(Clone, Debug, Default)]
pub struct BleDiscovery {
    /// What to look for.
    pub filter: BleFilter,
    /// The adapter (`hci0`); the first one if `None`.
    pub adapter: Option<String>,
}

impl Discovery for BleDiscovery {
    type Error = BleError;

    fn discover(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<DeviceInfo>, BleError>> + Send {
        let filter = self.filter.clone();
        let adapter = self.adapter.clone();
        async move {
            let central = match adapter {
                Some(a) => BleCentral::with_adapter(&a).await,
                None => BleCentral::new().await,
            };
            let central = match central {
                Ok(c) => c,
                Err(BleError::NoAdapter(_)) => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            Ok(central
                .scan(&filter, timeout)
                .await?
                .into_iter()
                .map(|d| DeviceInfo {
                    kind: LinkKind::Ble,
                    id: d.address,
                    name: d.name,
                    rssi_dbm: d.rssi_dbm,
                    usb: None,
                })
                .collect())
        }
    }
}
