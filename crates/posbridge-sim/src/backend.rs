//! The simulator behind an in-process native connection: what the ZVT and nexo front ends
//! drive. A `Payments` client is paired with the simulator over an in-memory link; a front end
//! in front of that client speaks its protocol to the till, and every payment the simulator
//! runs is journaled, signed and verified as in native mode.

use std::sync::Arc;
use std::time::Duration;

use posbridge::journal::MemoryJournal;
use posbridge::{ClientError, ConnectOptions, NativeAdapter, NativeClient, Payments, driver};
use posbridge_crypto::{LocalIdentity, PairingConfig, PairingSecret, PeerId};
use posbridge_link::{Delivery, memory_pair};
use posbridge_session::{ClientSecurity, PairingRegistry, SessionConfig, TerminalSession};
use posbridge_wire::{ClientId, Credential, Hello, OperatorAuth, OperatorSecret};

use crate::{Simulator, TerminalProfile};

/// The operator a protocol front end (ZVT, nexo) authorises refunds, reversals, captures and
/// end-of-day as (after checking what its protocol authenticates: ZVT's password, nexo's key).
pub const OPERATOR: &str = "zvt";
const OPERATOR_PIN: &str = "000000";

/// The simulator a protocol front end drives: a journaled native client of it.
pub type Backend = Payments<MemoryJournal>;

/// Runs `sim` behind an in-process native connection and returns the client: pairing over an
/// in-memory link, results verified against the simulator's key.
pub async fn in_process(sim: Simulator) -> Result<Backend, ClientError> {
    in_process_with(sim, None).await
}

/// [`in_process`], the terminal keeping its keys and results in `results` (a
/// [`FileResultStore`](crate::FileResultStore) under `--state`, so the record survives a
/// restart and can be audited) instead of in memory.
pub async fn in_process_with(
    mut sim: Simulator,
    results: Option<posbridge_session::SharedResults>,
) -> Result<Backend, ClientError> {
    let mut context = sim.context(PairingRegistry::new(), 1000);
    if let Some(results) = results {
        context.results = results;
    }
    context
        .operators
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .add_pin(OPERATOR, OPERATOR_PIN)
        .map_err(|_| ClientError::ConnectTimeout)?;
    let code = context
        .registry
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .open_window(PairingConfig::default(), driver::now())
        .map_err(|_| ClientError::ConnectTimeout)?
        .to_string();
    let (ours, theirs) = memory_pair(Delivery::Stream, 64 * 1024, 256);
    let session = TerminalSession::new(SessionConfig::default(), context, driver::now());
    tokio::spawn(async move { driver::serve_terminal(session, theirs, &mut sim).await });
    let options = ConnectOptions {
        session: SessionConfig::default(),
        identity: Arc::new(
            LocalIdentity::generate(
                PeerId::random().map_err(|_| ClientError::ConnectTimeout)?,
                "ZVT front end",
            )
            .map_err(|_| ClientError::ConnectTimeout)?,
        ),
        security: ClientSecurity::Pair(
            PairingSecret::code(&code).map_err(|_| ClientError::ConnectTimeout)?,
        ),
        hello: Hello {
            client_id: ClientId::from_u128(0x5A56_5400),
            client_name: Some("ZVT front end".into()),
            app_version: Some(concat!("posbridge-sim ", env!("CARGO_PKG_VERSION")).into()),
            protocol_versions: posbridge_wire::PROTOCOL_VERSIONS.to_vec(),
            max_frame_size: None,
        },
        timeout: Duration::from_secs(30),
    };
    let client = NativeClient::connect(ours, options).await?;
    let key = client.paired().map(|p| p.peer.signing_key);
    Ok(Payments::new(
        NativeAdapter::new(client, key),
        MemoryJournal::new(),
    ))
}

/// A simulator for `profile` with a new identity, its clock at the system's, behind an
/// in-process native connection ([`in_process`]).
pub async fn simulated(profile: TerminalProfile) -> Result<Backend, ClientError> {
    let identity = Arc::new(
        LocalIdentity::generate(profile.terminal_id.into(), "posbridge-sim")
            .map_err(|_| ClientError::ConnectTimeout)?,
    );
    let sim = Simulator::new(
        profile.clone(),
        identity.clone(),
        driver::now(),
        driver::wall_clock(),
    );
    in_process(sim).await
}

/// The credential of [`OPERATOR`], which the simulator behind accepts.
pub fn operator() -> OperatorAuth {
    OperatorAuth {
        operator_id: OPERATOR.into(),
        credential: Credential::Pin(
            OperatorSecret::new(OPERATOR_PIN).expect("six digits are a PIN"),
        ),
    }
}
