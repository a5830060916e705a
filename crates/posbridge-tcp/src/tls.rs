//! TLS through rustls (ring provider): CA verification or SHA-256 certificate pinning.

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use tokio::net::TcpStream;

use crate::TcpError;

/// The SHA-256 fingerprint of a certificate's DER encoding, as shown by
/// `openssl x509 -noout -fingerprint -sha256`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Text that is not 32 hex bytes (colons optional) was given as a fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParseFingerprintError;

impl fmt::Display for ParseFingerprintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SHA-256 fingerprint is 64 hex digits, optionally separated by colons")
    }
}

impl std::error::Error for ParseFingerprintError {}

impl std::str::FromStr for Fingerprint {
    type Err = ParseFingerprintError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex: Vec<u8> = s.bytes().filter(|&b| b != b':').collect();
        if hex.len() != 64 {
            return Err(ParseFingerprintError);
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks_exact(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| ParseFingerprintError)?;
            out[i] = u8::from_str_radix(text, 16).map_err(|_| ParseFingerprintError)?;
        }
        Ok(Self(out))
    }
}

/// How the client decides it is talking to the right terminal.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ServerVerification {
    /// Ordinary verification: the certificate chains to one of these roots (DER) and names the
    /// server name.
    Roots(Vec<Vec<u8>>),
    /// Pinning: the certificate's SHA-256 fingerprint is one of these. Chain and name are not
    /// checked — the pin is the identity, which suits terminals with self-signed certificates.
    Pinned(Vec<Fingerprint>),
}

/// Which TLS versions to allow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3 (default; many terminals and ZVT relays still speak only 1.2).
    #[default]
    Tls12AndTls13,
    /// TLS 1.3 only.
    Tls13Only,
    /// TLS 1.2 only.
    Tls12Only,
}

impl TlsVersions {
    fn list(self) -> &'static [&'static rustls::SupportedProtocolVersion] {
        static BOTH: [&rustls::SupportedProtocolVersion; 2] =
            [&rustls::version::TLS13, &rustls::version::TLS12];
        static TLS13: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS13];
        static TLS12: [&rustls::SupportedProtocolVersion; 1] = [&rustls::version::TLS12];
        match self {
            Self::Tls12AndTls13 => &BOTH,
            Self::Tls13Only => &TLS13,
            Self::Tls12Only => &TLS12,
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client side of TLS: server name, verification and versions, built once into a rustls
/// configuration.
#[derive(Clone)]
pub struct TlsClientConfig {
    server_name: ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsClientConfig")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// The error a pin mismatch travels in through rustls.
#[derive(Debug)]
struct PinMismatch(Fingerprint);

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "certificate fingerprint {} is not pinned", self.0)
    }
}

impl std::error::Error for PinMismatch {}

#[derive(Debug)]
struct PinVerifier {
    pins: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of_der(end_entity.as_ref());
        if self.pins.contains(&presented) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(PinMismatch(presented))),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl TlsClientConfig {
    /// A client configuration for `server_name` (the name in the terminal's certificate, or its
    /// IP address), verified as `verification` says, over `versions`.
    pub fn new(
        server_name: &str,
        verification: ServerVerification,
        versions: TlsVersions,
    ) -> Result<Self, TcpError> {
        let server_name = ServerName::try_from(server_name.to_string()).map_err(|_| {
            TcpError::Config(rustls::Error::General(format!(
                "invalid server name {server_name:?}"
            )))
        })?;
        let provider = provider();
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions.list())
            .map_err(TcpError::Config)?;
        let config = match verification {
            ServerVerification::Roots(roots) => {
                let mut store = rustls::RootCertStore::empty();
                for der in roots {
                    store
                        .add(CertificateDer::from(der))
                        .map_err(TcpError::Config)?;
                }
                builder.with_root_certificates(store).with_no_client_auth()
            }
            ServerVerification::Pinned(pins) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinVerifier { pins, provider }))
                .with_no_client_auth(),
        };
        Ok(Self {
            server_name,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// The TLS handshake over a connected `stream`, verified as configured (for protocols that
    /// run their own framing over TLS, such as nexo's HTTPS). A pin mismatch is
    /// [`TcpError::PinMismatch`].
    pub async fn handshake(
        &self,
        stream: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, TcpError> {
        self.connector
            .connect(self.server_name.clone(), stream)
            .await
            .map_err(classify)
    }
}

/// Turns a handshake error into [`TcpError::PinMismatch`] when that is what it was.
fn classify(e: std::io::Error) -> TcpError {
    let pin = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .and_then(|r| match r {
            rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(other))) => {
                other.downcast_ref::<PinMismatch>().map(|p| p.0)
            }
            _ => None,
        });
    match pin {
        Some(presented) => TcpError::PinMismatch { presented },
        None => TcpError::Tls(e),
    }
}

/// The server side of TLS: a certificate chain and its private key.
#[derive(Clone)]
pub struct TlsServerConfig {
    chain: Vec<Vec<u8>>,
    key_pkcs8: Vec<u8>,
    versions: TlsVersions,
}

impl fmt::Debug for TlsServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsServerConfig")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .field("versions", &self.versions)
            .finish()
    }
}

impl TlsServerConfig {
    /// A certificate chain (DER, leaf first) and its PKCS#8 private key (DER).
    pub fn new(chain: Vec<Vec<u8>>, key_pkcs8: Vec<u8>, versions: TlsVersions) -> Self {
        Self {
            chain,
            key_pkcs8,
            versions,
        }
    }

    /// The certificate chain in the PEM file `chain` (leaf first) and the PKCS#8 private key
    /// in the PEM file `key`, as a certificate authority or `openssl` writes them.
    pub fn from_pem_files(
        chain: &std::path::Path,
        key: &std::path::Path,
        versions: TlsVersions,
    ) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject;
        let certs = CertificateDer::pem_file_iter(chain)
            .map_err(|e| format!("{}: {e}", chain.display()))?
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: {e}", chain.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate", chain.display()));
        }
        let key = PrivatePkcs8KeyDer::from_pem_file(key).map_err(|e| {
            format!(
                "{}: a PKCS#8 private key (BEGIN PRIVATE KEY): {e}",
                key.display()
            )
        })?;
        Ok(Self::new(certs, key.secret_pkcs8_der().to_vec(), versions))
    }

    /// A TLS acceptor of this chain and key (for protocols that run their own framing over
    /// TLS, such as nexo's HTTPS).
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TcpError> {
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(self.versions.list())
            .map_err(TcpError::Config)?
            .with_no_client_auth()
            .with_single_cert(
                self.chain
                    .iter()
                    .cloned()
                    .map(CertificateDer::from)
                    .collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone())),
            )
            .map_err(TcpError::Config)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}
