//! LAN discovery by mDNS/DNS-SD: terminals announce `_posbridge._tcp`, apps browse for it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use posbridge_link::{DeviceInfo, Discovery, LinkKind};

use crate::TcpError;

/// The DNS-SD service type terminals announce.
pub const SERVICE_TYPE: &str = "_posbridge._tcp.local.";
/// The standard mDNS port.
pub const MDNS_PORT: u16 = 5353;

/// Where mDNS runs. The default is the standard port on every interface, as on a shop LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdnsConfig {
    port: u16,
    loopback_only: bool,
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            port: MDNS_PORT,
            loopback_only: false,
        }
    }
}

impl MdnsConfig {
    /// The UDP port (default 5353). Announcer and browser must agree; tests use another port so
    /// as not to meet the system's mDNS responder.
    pub fn set_port(&mut self, port: u16) -> &mut Self {
        self.port = port;
        self
    }

    /// Use only the IPv4 loopback interface (127.0.0.1): for tests and for a simulator on the same
    /// machine; nothing leaves the host.
    pub fn set_loopback_only(&mut self, on: bool) -> &mut Self {
        self.loopback_only = on;
        self
    }

    fn daemon(&self) -> Result<ServiceDaemon, TcpError> {
        let daemon = ServiceDaemon::new_with_port(self.port).map_err(TcpError::Mdns)?;
        if self.loopback_only {
            daemon
                .disable_interface(IfKind::All)
                .map_err(TcpError::Mdns)?;
            daemon
                .enable_interface(IfKind::LoopbackV4)
                .map_err(TcpError::Mdns)?;
            daemon.set_multicast_loop_v4(true).map_err(TcpError::Mdns)?;
        }
        Ok(daemon)
    }
}

/// A terminal (or simulator) announcing itself; the announcement is withdrawn on drop.
pub struct Announcer {
    daemon: ServiceDaemon,
    fullname: String,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer")
            .field("fullname", &self.fullname)
            .finish()
    }
}

impl Announcer {
    /// Announces `instance` (the terminal's display name) at `addr:port`, with the terminal id
    /// (32 hex digits) and model in its TXT record (`id=`, `model=`).
    pub fn announce(
        config: &MdnsConfig,
        instance: &str,
        terminal_id_hex: &str,
        model: &str,
        addr: IpAddr,
        port: u16,
    ) -> Result<Self, TcpError> {
        let daemon = config.daemon()?;
        let host = format!(
            "posbridge-{}.local.",
            &terminal_id_hex[..terminal_id_hex.len().min(12)]
        );
        let properties = [("id", terminal_id_hex), ("model", model), ("proto", "1")];
        let info = ServiceInfo::new(SERVICE_TYPE, instance, &host, addr, port, &properties[..])
            .map_err(TcpError::Mdns)?;
        let fullname = info.get_fullname().to_string();
        daemon.register(info).map_err(TcpError::Mdns)?;
        Ok(Self { daemon, fullname })
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        let _ = self.daemon.unregister(&self.fullname);
        let _ = self.daemon.shutdown();
    }
}

/// Browses the LAN for announcing terminals. Each result has kind [`LinkKind::Tcp`], `id` =
/// `ip:port` to pass to [`connect`](crate::connect), and `name` = the announced name followed
/// by the terminal id from the TXT record, as `Counter 2 (0011…eeff)`.
#[derive(Clone, Debug, Default)]
pub struct MdnsDiscovery {
    config: MdnsConfig,
}

impl MdnsDiscovery {
    /// Browsing with the given configuration.
    pub fn new(config: MdnsConfig) -> Self {
        Self { config }
    }
}

impl Discovery for MdnsDiscovery {
    type Error = TcpError;

    fn discover(
        &mut self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Vec<DeviceInfo>, TcpError>> + Send {
        let config = self.config.clone();
        async move {
            let daemon = config.daemon()?;
            let events = daemon.browse(SERVICE_TYPE).map_err(TcpError::Mdns)?;
            let deadline = tokio::time::Instant::now() + timeout;
            let mut found: HashMap<String, DeviceInfo> = HashMap::new();
            while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, events.recv_async()).await {
                if let ServiceEvent::ServiceResolved(service) = event {
                    let Some(ip) = service.get_addresses_v4().into_iter().next() else {
                        continue;
                    };
                    let instance = service
                        .get_fullname()
                        .strip_suffix(&format!(".{SERVICE_TYPE}"))
                        .unwrap_or(service.get_fullname())
                        .to_string();
                    let name = match service.get_property_val_str("id") {
                        Some(id) => format!("{instance} ({id})"),
                        None => instance,
                    };
                    found.insert(
                        service.get_fullname().to_string(),
                        DeviceInfo {
                            kind: LinkKind::Tcp,
                            id: format!("{ip}:{}", service.get_port()),
                            name: Some(name),
                            rssi_dbm: None,
                            usb: None,
                        },
                    );
                }
            }
            let _ = daemon.stop_browse(SERVICE_TYPE);
            let _ = daemon.shutdown();
            let mut list: Vec<DeviceInfo> = found.into_values().collect();
            list.sort_by(|a, b| a.id.cmp(&b.id));
            Ok(list)
        }
    }
}
