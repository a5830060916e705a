//! Where posctl keeps its state: keys, pairings, the journal and terminal profiles.
//!
//! `--home DIR`, else `$POSBRIDGE_HOME`, else `$XDG_CONFIG_HOME/posbridge`, else
//! `~/.config/posbridge` (`%APPDATA%\posbridge` on Windows), created owner-only (`0700`, and
//! every file in it `0600`: the journal describes every payment). Inside: `keys/` (this till's
//! identity and its pairings), `journal.db` (SQLite), `settlements/` (the terminal's signed
//! reports) and `config.toml`:
//!
//! ```toml
//! default = "shop"
//!
//! [terminals.shop]
//! address = "127.0.0.1:20100"
//! terminal_id = "51570000000000000000000000000001"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use posbridge::journal::SqliteJournal;
use posbridge_crypto::{FileKeyStore, PairingRecord, PairingStore, PeerId, Role};
use serde::{Deserialize, Serialize};

/// A terminal this till is paired with.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct TerminalProfile {
    /// `host:port` for TCP; the port's path for a serial terminal.
    pub(crate) address: String,
    /// The baud rate when the terminal is on a serial port (`address` is then its path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) serial_baud: Option<u32>,
    /// For TLS: the SHA-256 fingerprint of the terminal's certificate (the pin).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tls_pin: Option<String>,
    /// The terminal's id (32 hex digits).
    pub(crate) terminal_id: String,
}

/// `config.toml`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Config {
    /// The profile used when `--terminal` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) default: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub(crate) terminals: BTreeMap<String, TerminalProfile>,
}

pub(crate) struct Home {
    dir: PathBuf,
}

type Error = Box<dyn std::error::Error>;

impl Home {
    pub(crate) fn locate(explicit: Option<&Path>) -> Result<Self, Error> {
        let dir = if let Some(d) = explicit {
            d.to_path_buf()
        } else if let Some(d) = std::env::var_os("POSBRIDGE_HOME") {
            PathBuf::from(d)
        } else if let Some(d) = std::env::var_os("XDG_CONFIG_HOME") {
            PathBuf::from(d).join("posbridge")
        } else if let Some(d) = std::env::var_os("APPDATA") {
            PathBuf::from(d).join("posbridge")
        } else if let Some(d) = std::env::var_os("HOME") {
            PathBuf::from(d).join(".config").join("posbridge")
        } else {
            return Err("no home for posctl: pass --home DIR or set POSBRIDGE_HOME".into());
        };
        private_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Self { dir })
    }

    /// Where settlement reports are kept (for `posctl reconcile`).
    pub(crate) fn settlements_dir(&self) -> PathBuf {
        self.dir.join("settlements")
    }

    pub(crate) fn journal_path(&self) -> PathBuf {
        self.dir.join("journal.db")
    }

    /// Where the identity of this till's journal is recorded (beside its keys).
    fn journal_id_path(&self) -> PathBuf {
        self.dir.join("journal.id")
    }

    /// The journal, for reading (listing, exporting, reconciling): no identity check.
    pub(crate) fn journal_for_reading(&self) -> Result<SqliteJournal, Error> {
        Ok(SqliteJournal::open(self.journal_path())?)
    }

    /// The journal money commands write to. It must be the one this till has been keeping: its
    /// identity is recorded beside the keys when first used, and a journal with another one (a
    /// `journal.db` lost, truncated to nothing or replaced is a new, empty journal to SQLite)
    /// is refused — selling on it would forget every payment still in doubt. `posctl journal
    /// adopt` accepts the journal that is there now.
    pub(crate) fn journal(&self) -> Result<SqliteJournal, Error> {
        let journal = self.journal_for_reading()?;
        let id = hex(&journal.identity()?);
        match self.recorded_journal_id()? {
            Some(recorded) if recorded == id => Ok(journal),
            Some(recorded) => Err(format!(
                "{} is not the journal this till has kept (its identity is {id}, this till's is \
                 {recorded}): it was lost, truncated, replaced or copied from another till, and \
                 what was in doubt in the old one cannot be recovered from it. Put the right \
                 journal.db back, or run `posctl journal adopt` to go on with this one",
                self.journal_path().display(),
            )
            .into()),
            None => {
                // First use (or a home from before identities were recorded).
                write_private(&self.journal_id_path(), format!("{id}\n").as_bytes())?;
                Ok(journal)
            }
        }
    }

    /// The journal identity recorded beside the keys, if one is.
    fn recorded_journal_id(&self) -> Result<Option<String>, Error> {
        let path = self.journal_id_path();
        match std::fs::read_to_string(&path) {
            Ok(recorded) => Ok(Some(recorded.trim().to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display()).into()),
        }
    }

    /// Records the journal that is there now as this till's; returns its identity.
    pub(crate) fn adopt_journal(&self) -> Result<String, Error> {
        let id = hex(&self.journal_for_reading()?.identity()?);
        write_private(&self.journal_id_path(), format!("{id}\n").as_bytes())?;
        Ok(id)
    }

    /// Whether the journal there now is the one recorded (`None`: none recorded yet).
    pub(crate) fn journal_is_recorded(
        &self,
        journal: &SqliteJournal,
    ) -> Result<Option<bool>, Error> {
        let id = hex(&journal.identity()?);
        Ok(self.recorded_journal_id()?.map(|recorded| recorded == id))
    }

    pub(crate) fn pairings(&self) -> Result<PairingStore<FileKeyStore>, Error> {
        Ok(PairingStore::new(FileKeyStore::open(
            self.dir.join("keys"),
        )?))
    }

    /// This till's identity (made on first use).
    pub(crate) fn identity(&self) -> Result<posbridge_crypto::LocalIdentity, Error> {
        let name = std::env::var("HOSTNAME").unwrap_or_else(|_| "posctl till".into());
        Ok(self
            .pairings()?
            .identity_or_generate(PeerId::random()?, &name)?)
    }

    pub(crate) fn config(&self) -> Result<Config, Error> {
        let path = self.dir.join("config.toml");
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(format!("{}: {e}", path.display()).into()),
        }
    }

    pub(crate) fn save_config(&self, config: &Config) -> Result<(), Error> {
        let path = self.dir.join("config.toml");
        let tmp = self.dir.join("config.toml.tmp");
        write_private(&tmp, toml::to_string(config)?.as_bytes())?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// The profile `name` (or the default) and the pairing record of its terminal.
    pub(crate) fn terminal(
        &self,
        name: Option<&str>,
    ) -> Result<(String, TerminalProfile, PairingRecord), Error> {
        let config = self.config()?;
        let name = name
            .map(str::to_string)
            .or(config.default.clone())
            .ok_or("no terminal: pair with one first (posctl pair --tcp HOST:PORT --code CODE)")?;
        let profile = config
            .terminals
            .get(&name)
            .cloned()
            .ok_or_else(|| format!("no terminal profile {name:?} in config.toml"))?;
        if profile.terminal_id.len() != 32
            || !profile.terminal_id.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(format!(
                "config.toml: terminal {name:?} has terminal_id {:?}, which is not a terminal id \
                 (32 hex digits); fix it, or pair again",
                profile.terminal_id
            )
            .into());
        }
        let record = self
            .pairings()?
            .records()?
            .into_iter()
            .find(|r| {
                r.peer_role == Role::Terminal
                    && r.peer
                        .id
                        .to_string()
                        .eq_ignore_ascii_case(&profile.terminal_id)
            })
            .ok_or_else(|| {
                format!("terminal {name:?} is not paired (its pairing was removed): pair again")
            })?;
        Ok((name, profile, record))
    }
}

pub(crate) use posbridge_crypto::owner_only::{create_dir as private_dir, write as write_private};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
