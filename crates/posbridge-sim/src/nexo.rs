//! The simulator's nexo mode: the same simulated terminal — test cards, pace, batch, faults —
//! answering a till that speaks nexo Sale-to-POI (Adyen's Terminal API) over HTTPS.
//!
//! A `posbridge_nexo::NexoServer` in front of the in-process native client
//! ([`crate::backend`]) answers the till; `TransactionStatus` is answered from the server's
//! memory of its dialogues and, beyond it, from the simulator's journal. Faults that drop or
//! silence the connection drop the answers of that many payments after the payment is taken:
//! the classic in-doubt case nexo's `TransactionStatus` resolves.

use std::sync::Arc;

use posbridge_nexo::security::SecurityKey;
use posbridge_nexo::{NexoServer, ServerConfig};

use crate::backend::{Backend, operator};
use crate::{Fault, FaultAction, TerminalProfile};

/// The simulator's `POIID`: `P400Plus-` and nine digits of its terminal id (Adyen's form,
/// `<model>-<serial>`).
pub fn poi_id(profile: &TerminalProfile) -> String {
    let n = u128::from_be_bytes(*profile.terminal_id.as_bytes()) % 1_000_000_000;
    format!("P400Plus-{n:09}")
}

/// The nexo terminal in front of `backend`, named `poi_id`, with the shared key `key` (`None`:
/// messages in the clear, as test terminals allow), with `faults` applied to its answers.
pub fn server(
    backend: Backend,
    poi_id: &str,
    key: Option<SecurityKey>,
    faults: &[Fault],
) -> Result<Arc<NexoServer<Backend>>, String> {
    if faults.iter().any(|f| f.action == FaultAction::Reboot) {
        return Err("reboot faults are not simulated in nexo mode (use drop or silence)".into());
    }
    let mut config = ServerConfig::new(poi_id, key);
    config.operator = Some(operator());
    config.render = crate::render;
    let server = NexoServer::new(Arc::new(backend), config);
    server.drop_next_answers(faults.iter().map(|f| f.times).sum());
    Ok(Arc::new(server))
}

/// A certificate authority and the terminal certificate it signed, made at start (as Adyen's
/// terminal root and a terminal's own certificate).
pub struct Certificates {
    /// The authority's certificate, PEM: what a till trusts (`--nexo-ca-out` writes it).
    pub ca_pem: String,
    /// The authority's certificate, DER.
    pub ca_der: Vec<u8>,
    /// The terminal's certificate, DER: its subject and name are
    /// `<POIID>.test.terminal.adyen.com`, also valid for `localhost` and 127.0.0.1.
    pub leaf_der: Vec<u8>,
    /// The terminal's private key, PKCS#8 DER.
    pub key_pkcs8: Vec<u8>,
}

impl std::fmt::Debug for Certificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificates").finish_non_exhaustive()
    }
}

impl Certificates {
    /// The TLS configuration of a terminal presenting them (its certificate and the root).
    pub fn server_config(&self) -> posbridge_tcp::TlsServerConfig {
        posbridge_tcp::TlsServerConfig::new(
            vec![self.leaf_der.clone(), self.ca_der.clone()],
            self.key_pkcs8.clone(),
            posbridge_tcp::TlsVersions::Tls12AndTls13,
        )
    }
}

/// Makes [`Certificates`] for the terminal `poi_id`.
pub fn certificates(poi_id: &str) -> Result<Certificates, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "posbridge-sim terminal root");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let name = posbridge_nexo::https::adyen_certificate_name(poi_id, false);
    let mut leaf =
        CertificateParams::new(vec![name.clone(), "localhost".into(), "127.0.0.1".into()])?;
    leaf.distinguished_name.push(DnType::CommonName, name);
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Certificates {
        ca_pem: ca_cert.pem(),
        ca_der: ca_cert.der().to_vec(),
        leaf_der: leaf_cert.der().to_vec(),
        key_pkcs8: leaf_key.serialize_der(),
    })
}
