//! Key storage: where identities and pairing records live between runs.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

/// Secret bytes: wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Takes ownership of `bytes`.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<&[u8]> for Secret {
    fn from(bytes: &[u8]) -> Self {
        Self::new(bytes.to_vec())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} bytes redacted>)", self.0.len())
    }
}

/// Why a key store operation failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Names are 1–64 characters of `A–Z a–z 0–9 . _ -`, not starting with `.`.
    InvalidName(String),
    /// A key file or the store's directory can be read by others: refused rather than used.
    InsecurePermissions {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file system failed.
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
}

impl fmt::Display for KeyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidName(n) => write!(
                f,
                "invalid key name {n:?}: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"
            ),
            Self::InsecurePermissions { path, mode } => write!(
                f,
                "{} has permissions {mode:o}, readable by other users; keys there may be stolen. Fix with `chmod go-rwx {}` and consider re-pairing",
                path.display(),
                path.display()
            ),
            Self::Io { path, source } => write!(f, "key store {}: {source}", path.display()),
        }
    }
}

impl std::error::Error for KeyStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where secrets live: signing identities, channel keys, pairing records. Implementations must
/// never log or print what they hold.
pub trait KeyStore: Send + Sync {
    /// The secret stored under `name`, if any.
    fn load(&self, name: &str) -> Result<Option<Secret>, KeyStoreError>;
    /// Stores `secret` under `name`, replacing what was there, all or nothing.
    fn store(&self, name: &str, secret: &Secret) -> Result<(), KeyStoreError>;
    /// Removes `name`; returns whether it existed.
    fn delete(&self, name: &str) -> Result<bool, KeyStoreError>;
    /// The names stored, sorted.
    fn names(&self) -> Result<Vec<String>, KeyStoreError>;
}

fn check_name(name: &str) -> Result<(), KeyStoreError> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(KeyStoreError::InvalidName(name.to_string()))
    }
}

/// An in-memory store, for tests and for apps that keep keys in the platform keystore and only
/// hand them over at run time.
#[derive(Default)]
pub struct MemoryKeyStore {
    entries: Mutex<HashMap<String, Secret>>,
}

impl fmt::Debug for MemoryKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names().unwrap_or_default();
        f.debug_struct("MemoryKeyStore")
            .field("names", &names)
            .finish()
    }
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Secret>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl KeyStore for MemoryKeyStore {
    fn load(&self, name: &str) -> Result<Option<Secret>, KeyStoreError> {
        check_name(name)?;
        Ok(self.entries().get(name).cloned())
    }

    fn store(&self, name: &str, secret: &Secret) -> Result<(), KeyStoreError> {
        check_name(name)?;
        self.entries().insert(name.to_string(), secret.clone());
        Ok(())
    }

    fn delete(&self, name: &str) -> Result<bool, KeyStoreError> {
        check_name(name)?;
        Ok(self.entries().remove(name).is_some())
    }

    fn names(&self) -> Result<Vec<String>, KeyStoreError> {
        let mut names: Vec<String> = self.entries().keys().cloned().collect();
        names.sort();
        Ok(names)
    }
}

/// Keys as files in one directory: the directory is `0700`, every file `0600`, and a write goes
/// to a temporary file that is synced and then renamed over the old one (and the directory
/// synced), so a crash leaves either the old key or the new one, never half of either. Files or
/// a directory that others can read are refused.
#[derive(Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), KeyStoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyStoreError::InsecurePermissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), KeyStoreError> {
    // On Windows the per-user profile directory's ACL is what protects the files.
    Ok(())
}

impl FileKeyStore {
    /// Opens (creating, with mode `0700`) the store in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, KeyStoreError> {
        let dir = dir.into();
        if !dir.exists() {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(&dir).map_err(io_err(&dir))?;
        }
        check_private(&dir)?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, KeyStoreError> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.key")))
    }
}

impl KeyStore for FileKeyStore {
    fn load(&self, name: &str) -> Result<Option<Secret>, KeyStoreError> {
        let path = self.path(name)?;
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        check_private(&path)?;
        let mut bytes = Zeroizing::new(Vec::new());
        file.read_to_end(&mut bytes).map_err(io_err(&path))?;
        Ok(Some(Secret(bytes)))
    }

    fn store(&self, name: &str, secret: &Secret) -> Result<(), KeyStoreError> {
        let path = self.path(name)?;
        let temp = self.dir.join(format!(
            ".{name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = (|| {
            let mut file = options.open(&temp)?;
            file.write_all(secret.expose())?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            // Make the rename itself durable.
            std::fs::File::open(&self.dir)?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        written.map_err(io_err(&path))
    }

    fn delete(&self, name: &str) -> Result<bool, KeyStoreError> {
        let path = self.path(name)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {
                std::fs::File::open(&self.dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err(&self.dir))?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    fn names(&self) -> Result<Vec<String>, KeyStoreError> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(io_err(&self.dir))? {
            let entry = entry.map_err(io_err(&self.dir))?;
            let file = entry.file_name().to_string_lossy().to_string();
            if let Some(name) = file.strip_suffix(".key")
                && check_name(name).is_ok()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}
