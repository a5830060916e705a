//! The simulator as a terminal inside an app's own process: the native protocol's terminal role
//! in front of a [`Simulator`], listening on 127.0.0.1, with pairing open and an operator — what
//! examples, the language bindings' tests and apps' own tests run against without hardware.

use std::sync::Arc;

use posbridge::driver;
use posbridge_crypto::{LocalIdentity, PairingConfig};
use posbridge_session::{
    PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};

use crate::{Fault, Simulator, TerminalProfile};

/// A simulated terminal served in this process (see the module).
pub struct EmbeddedTerminal {
    /// The code its "screen" shows while pairing is open.
    pub code: String,
    context: TerminalContext,
    app: SharedApp<Simulator>,
}

impl std::fmt::Debug for EmbeddedTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedTerminal").finish_non_exhaustive()
    }
}

/// Why an embedded terminal could not start.
#[derive(Debug)]
pub struct EmbeddedError(String);

impl std::fmt::Display for EmbeddedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the embedded terminal could not start: {}", self.0)
    }
}

impl std::error::Error for EmbeddedError {}

fn fail(e: impl std::fmt::Display) -> EmbeddedError {
    EmbeddedError(e.to_string())
}

impl EmbeddedTerminal {
    /// A terminal for `profile` with pairing open (the code in [`code`](Self::code)) and the
    /// operators `(name, PIN)`.
    pub fn new(
        profile: TerminalProfile,
        operators: &[(&str, &str)],
    ) -> Result<Self, EmbeddedError> {
        let keys = Arc::new(
            LocalIdentity::generate(profile.terminal_id.into(), "posbridge embedded terminal")
                .map_err(fail)?,
        );
        let sim = Simulator::new(profile, keys, driver::now(), driver::wall_clock());
        let context = sim.context(PairingRegistry::new(), 10_000);
        for (name, pin) in operators {
            context
                .operators
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .add_pin(name, pin)
                .map_err(|e| fail(format!("operator {name}: {e:?}")))?;
        }
        let code = context
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .open_window(PairingConfig::default(), driver::now())
            .map_err(fail)?
            .to_string();
        Ok(Self {
            code,
            context,
            app: SharedApp::new(sim),
        })
    }

    /// The `posbridge://` URI a terminal shows as a QR code (or writes to an NFC tag) to pair
    /// without typing: its id, `address` (`host:port`) and the open pairing window's secret.
    /// `None` when pairing is closed.
    pub fn handover_uri(&self, address: &str) -> Option<String> {
        let registry = self
            .context
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let secret = *registry.window()?.handover_secret()?;
        let (host, port) = address.rsplit_once(':')?;
        let mut handover = posbridge_handover::Handover::new(self.context.identity.id().0);
        handover.tcp.push(posbridge_handover::TcpEndpoint {
            host: host.to_owned(),
            port: port.parse().ok()?,
        });
        handover.pairing_secret = Some(posbridge_handover::PairingSecret::from_bytes(secret));
        Some(handover.to_uri())
    }

    /// Faults for the next payments (replacing any left).
    pub fn set_faults(&self, faults: Vec<Fault>) {
        self.app.lock().set_faults(faults);
    }

    /// The simulator, for scenario settings (cards presented, faults).
    pub fn simulator(&self) -> &SharedApp<Simulator> {
        &self.app
    }

    /// Serves one connection in the background (on the current tokio runtime).
    pub fn serve(&self, link: impl posbridge_link::Link + 'static) {
        let session = TerminalSession::new(
            SessionConfig::default(),
            self.context.clone(),
            driver::now(),
        );
        let mut app = self.app.clone();
        tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
    }

    /// Serves a serial line in the background: one till after another on the same line, a new
    /// session each time (posbridge's line driver).
    pub fn serve_line(&self, line: impl posbridge_link::Link + 'static) {
        let context = self.context.clone();
        let mut app = self.app.clone();
        tokio::spawn(async move {
            driver::serve_terminal_line(
                line,
                || TerminalSession::new(SessionConfig::default(), context.clone(), driver::now()),
                &mut app,
            )
            .await
        });
    }

    /// Listens on 127.0.0.1 (any port) and serves every connection in the background; returns
    /// the address.
    pub async fn listen(&self) -> Result<String, EmbeddedError> {
        let listener = posbridge_tcp::Listener::bind("127.0.0.1:0")
            .await
            .map_err(fail)?;
        self.accept_all(listener)
    }

    /// [`listen`](Self::listen) with TLS, under a new self-signed certificate; returns the
    /// address and the certificate's SHA-256 fingerprint (the pin a till checks).
    pub async fn listen_tls(&self) -> Result<(String, posbridge_tcp::Fingerprint), EmbeddedError> {
        let cert =
            rcgen::generate_simple_self_signed(vec!["posbridge-terminal".into()]).map_err(fail)?;
        let der = cert.cert.der().to_vec();
        let tls = posbridge_tcp::TlsServerConfig::new(
            vec![der.clone()],
            cert.signing_key.serialize_der(),
            posbridge_tcp::TlsVersions::Tls12AndTls13,
        );
        let listener = posbridge_tcp::Listener::bind_tls("127.0.0.1:0", &tls)
            .await
            .map_err(fail)?;
        Ok((
            self.accept_all(listener)?,
            posbridge_tcp::Fingerprint::of_der(&der),
        ))
    }

    fn accept_all(&self, listener: posbridge_tcp::Listener) -> Result<String, EmbeddedError> {
        let address = listener.local_addr().map_err(fail)?.to_string();
        let (context, app) = (self.context.clone(), self.app.clone());
        tokio::spawn(async move {
            while let Ok(link) = listener.accept().await {
                let session =
                    TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
                let mut app = app.clone();
                tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
            }
        });
        Ok(address)
    }
}
