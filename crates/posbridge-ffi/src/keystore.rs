//! The app's own secret store (Android Keystore-backed storage, the iOS Keychain) for this till's
//! identity and its pairings, instead of files in the data directory.

use std::sync::Arc;

use posbridge_crypto::{KeyStore, KeyStoreError, Secret};

/// Why the app's store failed.
#[derive(Debug, uniffi::Error)]
pub enum StoreFailure {
    /// The store could not do it.
    Failed {
        /// Why.
        detail: String,
    },
}

impl std::fmt::Display for StoreFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed { detail } => write!(f, "the app's secret store failed: {detail}"),
        }
    }
}

impl std::error::Error for StoreFailure {}

impl From<uniffi::UnexpectedUniFFICallbackError> for StoreFailure {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Failed { detail: e.reason }
    }
}

/// Secrets by name, kept by the app. Names are 1–64 characters of `A–Z a–z 0–9 . _ -`. Each
/// `store` must replace the value all or nothing.
#[uniffi::export(with_foreign)]
pub trait SecretStore: Send + Sync {
    /// The secret under `name`, if any.
    fn load(&self, name: String) -> Result<Option<Vec<u8>>, StoreFailure>;
    /// Keeps `secret` under `name`, replacing what was there.
    fn store(&self, name: String, secret: Vec<u8>) -> Result<(), StoreFailure>;
    /// Removes `name`; whether it existed.
    fn delete(&self, name: String) -> Result<bool, StoreFailure>;
    /// The names kept.
    fn names(&self) -> Result<Vec<String>, StoreFailure>;
}

/// posbridge's key store over the app's.
pub(crate) struct Foreign(pub(crate) Arc<dyn SecretStore>);

fn io(name: &str, e: StoreFailure) -> KeyStoreError {
    KeyStoreError::Io {
        path: name.into(),
        source: std::io::Error::other(e.to_string()),
    }
}

impl KeyStore for Foreign {
    fn load(&self, name: &str) -> Result<Option<Secret>, KeyStoreError> {
        Ok(self
            .0
            .load(name.into())
            .map_err(|e| io(name, e))?
            .map(Secret::new))
    }

    fn store(&self, name: &str, secret: &Secret) -> Result<(), KeyStoreError> {
        self.0
            .store(name.into(), secret.expose().to_vec())
            .map_err(|e| io(name, e))
    }

    fn delete(&self, name: &str) -> Result<bool, KeyStoreError> {
        self.0.delete(name.into()).map_err(|e| io(name, e))
    }

    fn names(&self) -> Result<Vec<String>, KeyStoreError> {
        let mut names = self.0.names().map_err(|e| io("", e))?;
        names.sort();
        Ok(names)
    }
}
