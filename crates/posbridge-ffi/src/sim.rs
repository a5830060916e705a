//! The embedded simulator (feature `sim`): posbridge's simulated terminal served on 127.0.0.1
//! inside the app's process, with pairing open and an operator `manager` (PIN 2468).

use std::sync::Arc;
use std::time::Duration;

use posbridge_api::FaultPoint;
use posbridge_sim::embedded::EmbeddedTerminal;
use posbridge_sim::{Fault, FaultAction, Latency, TerminalProfile};

use crate::{PosError, failed, on_runtime};

/// A simulated terminal in this process.
#[derive(uniffi::Object)]
pub struct Simulator {
    terminal: EmbeddedTerminal,
    address: String,
    /// The till ends of serial lines made by `serial_port`, kept open while the simulator lives.
    ports: std::sync::Mutex<Vec<posbridge::serial::SerialLink>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("address", &self.address)
            .finish()
    }
}

/// A TLS endpoint of the simulator.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TlsEndpoint {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// The certificate's SHA-256 fingerprint.
    pub pin: String,
}

/// Starts a simulated terminal; `card_delay_ms` is how long the simulated customer takes to
/// present a card (0: at once).
#[uniffi::export]
pub async fn start_simulator(card_delay_ms: u64) -> Result<Arc<Simulator>, PosError> {
    on_runtime(async move {
        let profile = TerminalProfile {
            latency: Latency {
                card: Duration::from_millis(card_delay_ms),
                ..Latency::INSTANT
            },
            ..TerminalProfile::default()
        };
        let terminal = EmbeddedTerminal::new(profile, &[("manager", "2468")]).map_err(failed)?;
        let address = terminal.listen().await.map_err(failed)?;
        Ok(Arc::new(Simulator {
            terminal,
            address,
            ports: std::sync::Mutex::new(Vec::new()),
        }))
    })
    .await
}

#[uniffi::export]
impl Simulator {
    /// Where it listens (`127.0.0.1:PORT`).
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// The `posbridge://` URI its "screen" would show as a QR code to pair without typing (its
    /// address and the pairing window's secret); `None` once pairing is closed.
    pub fn handover_uri(&self) -> Option<String> {
        self.terminal.handover_uri(&self.address)
    }

    /// Also serves TLS (a new self-signed certificate) on another port: its address and the
    /// certificate's SHA-256 fingerprint, for `ConnectOptions.tls_pin`.
    pub async fn listen_tls(self: Arc<Self>) -> Result<TlsEndpoint, PosError> {
        on_runtime(async move {
            let (address, pin) = self.terminal.listen_tls().await.map_err(failed)?;
            Ok(TlsEndpoint {
                address,
                pin: pin.to_string(),
            })
        })
        .await
    }

    /// The pairing code its "screen" shows.
    pub fn pairing_code(&self) -> String {
        self.terminal.code.clone()
    }

    /// The next `times` payments are taken and their answers lost: the connection drops once
    /// the outcome is decided (the case recovery exists for).
    pub fn drop_answers(&self, times: u32) {
        self.terminal.set_faults(vec![Fault {
            at: FaultPoint::BeforeResult,
            action: FaultAction::Drop,
            times,
        }]);
    }

    /// How many transactions its open batch holds (each charge once).
    pub fn transactions(&self) -> u64 {
        self.terminal.simulator().lock().transactions().count() as u64
    }
}

/// A simulated ZVT terminal in this process (the simulator behind posbridge's ZVT terminal role),
/// on 127.0.0.1, password 000000.
#[derive(uniffi::Object)]
pub struct ZvtSimulator {
    address: String,
}

impl std::fmt::Debug for ZvtSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZvtSimulator")
            .field("address", &self.address)
            .finish()
    }
}

fn instant() -> TerminalProfile {
    TerminalProfile {
        latency: Latency::INSTANT,
        ..TerminalProfile::default()
    }
}

/// Starts a simulated ZVT terminal.
#[uniffi::export]
pub async fn start_zvt_simulator() -> Result<Arc<ZvtSimulator>, PosError> {
    on_runtime(async move {
        let backend = posbridge_sim::zvt::simulated(instant())
            .await
            .map_err(failed)?;
        let server = Arc::new(
            posbridge_sim::zvt::server(
                backend,
                29_001_001,
                Vec::new(),
                posbridge_zvt::server::ServerConfig {
                    render: posbridge_sim::render,
                    ..Default::default()
                },
            )
            .map_err(failed)?,
        );
        let listener = posbridge_tcp::Listener::bind("127.0.0.1:0")
            .await
            .map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?.to_string();
        tokio::spawn(async move {
            while let Ok(link) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let link = posbridge_zvt::transport::ZvtLink::new(
                        link,
                        posbridge_zvt::transport::Framing::Tcp,
                    );
                    let _ = server.serve(link).await;
                });
            }
        });
        Ok(Arc::new(ZvtSimulator { address }))
    })
    .await
}

#[uniffi::export]
impl ZvtSimulator {
    /// Where it listens (`127.0.0.1:PORT`).
    pub fn address(&self) -> String {
        self.address.clone()
    }
}

/// A simulated nexo terminal (Adyen's Terminal API) in this process, over HTTPS on 127.0.0.1.
#[derive(uniffi::Object)]
pub struct NexoSimulator {
    address: String,
    poi_id: String,
    root_pem: String,
}

impl std::fmt::Debug for NexoSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NexoSimulator")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

/// Starts a simulated nexo terminal `P400Plus-000000001` whose messages are encrypted under the
/// shared key `key_identifier` version 1 with `passphrase` (in the clear without one).
#[uniffi::export]
pub async fn start_nexo_simulator(
    key_identifier: String,
    passphrase: Option<String>,
) -> Result<Arc<NexoSimulator>, PosError> {
    on_runtime(async move {
        let poi_id = "P400Plus-000000001".to_string();
        let key = passphrase.map(|p| {
            posbridge_nexo::security::SecurityKey::derive(key_identifier, 1, p.as_bytes())
        });
        let backend = posbridge_sim::backend::simulated(instant())
            .await
            .map_err(failed)?;
        let server = posbridge_sim::nexo::server(backend, &poi_id, key, &[]).map_err(failed)?;
        let certs = posbridge_sim::nexo::certificates(&poi_id).map_err(failed)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(failed)?;
        let address = listener.local_addr().map_err(failed)?.to_string();
        tokio::spawn(posbridge_nexo::https::serve(
            listener,
            Some(certs.server_config()),
            server,
        ));
        Ok(Arc::new(NexoSimulator {
            address,
            poi_id,
            root_pem: certs.ca_pem,
        }))
    })
    .await
}

#[uniffi::export]
impl NexoSimulator {
    /// Where it listens (`127.0.0.1:PORT`).
    pub fn address(&self) -> String {
        self.address.clone()
    }

    /// Its POIID.
    pub fn poi_id(&self) -> String {
        self.poi_id.clone()
    }

    /// The root its HTTPS certificate chains to (PEM), for `NexoTrust::Root`.
    pub fn root_certificate_pem(&self) -> String {
        self.root_pem.clone()
    }
}

#[uniffi::export]
impl Simulator {
    /// Runs `n` sales of 1.00 EUR against this simulator from Rust — pairing a till of its own
    /// with the code, through the same `Terminal` the bindings use, without crossing into the
    /// app's language — and returns the nanoseconds the sales took. For measuring what the
    /// bindings cost per call (`crates/posbridge-ffi/python/bench.py`); only against the
    /// simulator, which is why it lives here.
    pub async fn time_rust_sales(&self, n: u32) -> Result<u64, PosError> {
        let address = self.address.clone();
        let code = self.terminal.code.clone();
        on_runtime(async move {
            let dir = std::env::temp_dir().join(format!(
                "posbridge-ffi-bench-{}-{}",
                std::process::id(),
                address.replace([':', '.'], "-")
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let terminal = crate::connect_inner(
                crate::ConnectOptions {
                    address,
                    data_dir: dir.to_string_lossy().into_owned(),
                    pairing_code: Some(code),
                    till_name: "rust bench".into(),
                    tls_pin: None,
                },
                None,
            )
            .await?;
            let start = std::time::Instant::now();
            for _ in 0..n {
                terminal
                    .clone()
                    .sale("1.00".into(), "EUR".into(), None)
                    .await?;
            }
            let elapsed = start.elapsed().as_nanos() as u64;
            terminal.disconnect().await;
            let _ = std::fs::remove_dir_all(&dir);
            Ok(elapsed)
        })
        .await
    }
}

/// The embedded simulator as a USB device (feature `sim`): bulk endpoints an app's `UsbBulk`
/// can pass transfers to, with the simulator behind them (64-byte packets, messages segmented),
/// so an app's USB code path is tested without a device.
#[derive(uniffi::Object)]
pub struct SimulatedUsbDevice {
    endpoints: std::sync::Mutex<posbridge_usb::MemoryEndpoints>,
}

impl std::fmt::Debug for SimulatedUsbDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimulatedUsbDevice")
    }
}

fn transfer(e: posbridge_usb::TransferError) -> crate::LinkFailure {
    crate::LinkFailure::Closed {
        detail: e.to_string(),
    }
}

#[uniffi::export]
impl Simulator {
    /// A serial line (a pseudo-terminal pair) with this simulator on one end: the path of the
    /// other end, for `connect_serial`.
    pub fn serial_port(&self) -> Result<String, PosError> {
        // The ports register with posbridge's runtime.
        let _guard = crate::RUNTIME.enter();
        let (line, till_end) = posbridge::serial::pty_pair().map_err(failed)?;
        let path = till_end
            .port_path()
            .ok_or_else(|| failed("the pseudo-terminal has no path"))?
            .to_string();
        self.terminal.serve_line(line);
        self.ports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(till_end);
        Ok(path)
    }

    /// Serves the serial port at `path` (`baud` 8N1) as the terminal: the device end of a
    /// null-modem cable, or a USB gadget's serial function, so that a till on the other end
    /// pays through real hardware or a real kernel driver.
    pub fn serve_serial_port(&self, path: String, baud: u32) -> Result<(), PosError> {
        let _guard = crate::RUNTIME.enter();
        let config = posbridge::serial::SerialConfig {
            baud,
            ..Default::default()
        };
        let line =
            posbridge::serial::open(&path, &config).map_err(|e| PosError::ConnectFailed {
                detail: format!("{path}: {e}"),
            })?;
        self.terminal.serve_line(line);
        Ok(())
    }

    /// A USB device with this simulator behind it (a new terminal session on its own bus).
    pub fn usb_device(&self) -> Arc<SimulatedUsbDevice> {
        let (endpoints, device) = posbridge_usb::memory_usb(64);
        let device =
            posbridge_link::Segmented::new(device, 64 * 1024).expect("a valid segment size");
        let _guard = crate::RUNTIME.enter();
        self.terminal.serve(device);
        Arc::new(SimulatedUsbDevice {
            endpoints: std::sync::Mutex::new(endpoints),
        })
    }
}

#[uniffi::export]
impl SimulatedUsbDevice {
    /// Its packet size.
    pub fn max_packet(&self) -> u32 {
        64
    }

    /// One OUT transfer to the device.
    pub async fn bulk_out(self: Arc<Self>, data: Vec<u8>) -> Result<(), crate::LinkFailure> {
        use posbridge_usb::BulkEndpoints;
        on_runtime(async move {
            self.endpoints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .submit_out(data);
            std::future::poll_fn(|cx| {
                self.endpoints
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .poll_out(cx)
            })
            .await
            .map_err(transfer)
        })
        .await
    }

    /// One IN transfer from the device: its next packet.
    pub async fn bulk_in(self: Arc<Self>, max: u32) -> Result<Vec<u8>, crate::LinkFailure> {
        use posbridge_usb::BulkEndpoints;
        on_runtime(async move {
            self.endpoints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .submit_in(max as usize);
            std::future::poll_fn(|cx| {
                self.endpoints
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .poll_in(cx)
            })
            .await
            .map_err(transfer)
        })
        .await
    }
}
