//! A simulated terminal for the examples: the payment logic of `posbridge-sim` behind the native
//! protocol's terminal role, so every example runs on its own, without hardware.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use posbridge::driver;
use posbridge_crypto::{LocalIdentity, PairingConfig};
use posbridge_link::Link;
use posbridge_session::{
    PairingRegistry, SessionConfig, SharedApp, TerminalContext, TerminalSession,
};
use posbridge_sim::{Fault, Latency, Simulator, TerminalProfile};

/// A terminal: its pairing code, and what serves connections.
pub struct Terminal {
    pub code: String,
    pub context: TerminalContext,
    pub app: SharedApp<Simulator>,
}

impl Terminal {
    /// A terminal with pairing open, a manager operator (PIN 2468), and `faults` injected.
    pub fn new(faults: Vec<Fault>) -> Self {
        let profile = TerminalProfile {
            latency: Latency {
                card: Duration::from_millis(300),
                read: Duration::from_millis(100),
                pin: Duration::from_millis(300),
                online: Duration::from_millis(200),
                card_timeout: Duration::from_secs(30),
            },
            ..TerminalProfile::default()
        };
        let keys = Arc::new(
            LocalIdentity::generate(profile.terminal_id.into(), "example terminal").unwrap(),
        );
        let context = TerminalContext::new(
            keys.clone(),
            PairingRegistry::new(),
            profile.capabilities(),
            1000,
        );
        context
            .operators
            .lock()
            .unwrap()
            .add_pin("manager", "2468")
            .unwrap();
        let code = context
            .registry
            .lock()
            .unwrap()
            .open_window(PairingConfig::default(), driver::now())
            .unwrap()
            .to_string();
        let mut sim = Simulator::new(profile, keys, driver::now(), driver::wall_clock());
        sim.set_faults(faults);
        Self {
            code,
            context,
            app: SharedApp::new(sim),
        }
    }

    /// Serves one connection in the background.
    pub fn serve(&self, link: impl Link + 'static) {
        let session = TerminalSession::new(
            SessionConfig::default(),
            self.context.clone(),
            driver::now(),
        );
        let mut app = self.app.clone();
        tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
    }

    /// Listens on 127.0.0.1 (any port) and serves every connection; returns the address.
    pub async fn listen(&self) -> String {
        let listener = posbridge::tcp::Listener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let (context, app) = (self.context.clone(), self.app.clone());
        tokio::spawn(async move {
            while let Ok(link) = listener.accept().await {
                let session =
                    TerminalSession::new(SessionConfig::default(), context.clone(), driver::now());
                let mut app = app.clone();
                tokio::spawn(async move { driver::serve_terminal(session, link, &mut app).await });
            }
        });
        address
    }
}

/// What the till says about itself.
pub fn hello(name: &str) -> posbridge_wire::Hello {
    posbridge_wire::Hello {
        client_id: posbridge_wire::ClientId([0xE7; 16]),
        client_name: Some(name.into()),
        app_version: Some("posbridge examples".into()),
        protocol_versions: vec![1],
        max_frame_size: None,
    }
}
