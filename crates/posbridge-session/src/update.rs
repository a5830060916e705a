//! Software updates (protocol 1.1), shared by a terminal's sessions: the publisher key it
//! trusts, its rules (battery, payments running), and the image being received — kept across
//! connections so that a transfer resumes where it stopped.

use std::sync::{Arc, Mutex};

use posbridge_crypto::PublicKey;
use posbridge_wire::{UpdateManifest, UpdateRefusal};
use sha2::{Digest, Sha256};

/// An image being received.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Staging {
    manifest: UpdateManifest,
    bytes: Vec<u8>,
}

/// A terminal's software updates: whom it trusts, when it refuses, and what it has received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateStore {
    trusted: Option<PublicKey>,
    min_battery: u8,
    busy: bool,
    staging: Option<Staging>,
}

/// A store shared by a terminal's sessions.
pub type SharedUpdates = Arc<Mutex<UpdateStore>>;

impl Default for UpdateStore {
    fn default() -> Self {
        Self {
            trusted: None,
            min_battery: 30,
            busy: false,
            staging: None,
        }
    }
}

/// What a chunk did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// Send from this offset.
    Next(u32),
    /// The whole image, its digest right.
    Complete(UpdateManifest, Vec<u8>),
    /// Refused.
    Refused(UpdateRefusal),
}

impl UpdateStore {
    /// A store trusting no publisher (every update is refused until [`trust`](Self::trust)).
    pub fn shared() -> SharedUpdates {
        Arc::new(Mutex::new(Self::default()))
    }

    /// Trusts `key` as the publisher of this terminal's software.
    pub fn trust(&mut self, key: PublicKey) {
        self.trusted = Some(key);
    }

    /// Refuses updates below `percent` battery unless charging (default 30).
    pub fn set_min_battery(&mut self, percent: u8) {
        self.min_battery = percent.min(100);
    }

    /// The app says whether a payment runs (updates are refused meanwhile; the simulator keeps
    /// it set while it has payments).
    pub fn set_busy(&mut self, busy: bool) {
        self.busy = busy;
    }

    /// Whether the app says a payment runs.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// How much of which image has arrived.
    pub fn staged(&self) -> Option<(&UpdateManifest, usize)> {
        self.staging.as_ref().map(|s| (&s.manifest, s.bytes.len()))
    }

    /// Checks an offer — its signature first, then whether `installed` is its version and the
    /// battery; on success keeps (or starts) the image's staging and returns where to resume.
    pub(crate) fn offer(
        &mut self,
        manifest: &UpdateManifest,
        installed: Option<&str>,
        battery: Option<u8>,
        charging: bool,
    ) -> Result<u32, UpdateRefusal> {
        let trusted = self.trusted.ok_or(UpdateRefusal::Untrusted)?;
        posbridge_crypto::verify_update(&trusted, manifest)
            .map_err(|_| UpdateRefusal::Untrusted)?;
        if installed == Some(manifest.version.as_str()) {
            return Err(UpdateRefusal::AlreadyInstalled);
        }
        if let (Some(now), Some(offered)) =
            (installed.and_then(numbers), numbers(&manifest.version))
            && offered <= now
        {
            return Err(UpdateRefusal::Older);
        }
        if battery.is_some_and(|b| b < self.min_battery) && !charging {
            return Err(UpdateRefusal::BatteryLow);
        }
        match &self.staging {
            Some(s) if s.manifest == *manifest => {}
            _ => {
                self.staging = Some(Staging {
                    manifest: manifest.clone(),
                    bytes: Vec::new(),
                })
            }
        }
        Ok(self.staging.as_ref().map_or(0, |s| s.bytes.len() as u32))
    }

    /// Takes `data` at `offset` of the image with `digest`.
    pub(crate) fn chunk(&mut self, digest: &[u8; 32], offset: u32, data: &[u8]) -> Received {
        let Some(s) = self
            .staging
            .as_mut()
            .filter(|s| s.manifest.digest == *digest)
        else {
            return Received::Refused(UpdateRefusal::NotOffered);
        };
        let have = s.bytes.len() as u32;
        if offset != have {
            // A repeat, or a gap: the sender resumes from what is here.
            return Received::Next(have);
        }
        if u64::from(have) + data.len() as u64 > u64::from(s.manifest.size) {
            self.staging = None;
            return Received::Refused(UpdateRefusal::DigestMismatch);
        }
        s.bytes.extend_from_slice(data);
        if s.bytes.len() < s.manifest.size as usize {
            return Received::Next(s.bytes.len() as u32);
        }
        self.complete()
    }

    /// The staged image, if it is whole: its digest checked, taken out of the store.
    pub(crate) fn complete(&mut self) -> Received {
        let Some(s) = self
            .staging
            .take_if(|s| s.bytes.len() == s.manifest.size as usize)
        else {
            return Received::Next(self.staging.as_ref().map_or(0, |s| s.bytes.len() as u32));
        };
        if Sha256::digest(&s.bytes).as_slice() != s.manifest.digest {
            return Received::Refused(UpdateRefusal::DigestMismatch);
        }
        Received::Complete(s.manifest, s.bytes)
    }

    /// Puts a whole, checked image back (it could not be installed now: a payment runs).
    pub(crate) fn keep(&mut self, manifest: UpdateManifest, bytes: Vec<u8>) {
        self.staging = Some(Staging { manifest, bytes });
    }
}

/// A version of dotted numbers ("2.10.1"), comparable number by number; `None` for anything
/// else.
fn numbers(version: &str) -> Option<Vec<u64>> {
    version.split('.').map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_crypto::SigningIdentity;

    fn signed(image: &[u8], publisher: &SigningIdentity) -> UpdateManifest {
        let mut m = UpdateManifest {
            version: "2.0.0".into(),
            size: image.len() as u32,
            digest: Sha256::digest(image).into(),
            signature: [0; 64],
        };
        publisher.sign_update(&mut m);
        m
    }

    #[test]
    fn offers_are_checked_chunks_resume_and_the_digest_decides() {
        let publisher = SigningIdentity::generate().unwrap();
        let image: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let m = signed(&image, &publisher);
        let mut store = UpdateStore::default();
        assert_eq!(
            store.offer(&m, None, None, false),
            Err(UpdateRefusal::Untrusted)
        );
        store.trust(SigningIdentity::generate().unwrap().public_key());
        assert_eq!(
            store.offer(&m, None, None, false),
            Err(UpdateRefusal::Untrusted),
            "another key"
        );
        store.trust(publisher.public_key());
        assert_eq!(
            store.offer(&m, None, Some(20), false),
            Err(UpdateRefusal::BatteryLow)
        );
        assert_eq!(
            store.offer(&m, None, Some(20), true),
            Ok(0),
            "charging is enough"
        );
        assert_eq!(
            store.chunk(&m.digest, 0, &image[..2048]),
            Received::Next(2048)
        );
        // A repeat of the first chunk, or one from too far: resume from what is here.
        assert_eq!(
            store.chunk(&m.digest, 0, &image[..2048]),
            Received::Next(2048)
        );
        assert_eq!(
            store.chunk(&m.digest, 4096, &image[4096..]),
            Received::Next(2048)
        );
        // Offered again (after a reconnect): resumes.
        assert_eq!(store.offer(&m, None, None, false), Ok(2048));
        assert_eq!(
            store.chunk(&m.digest, 2048, &image[2048..4096]),
            Received::Next(4096)
        );
        match store.chunk(&m.digest, 4096, &image[4096..]) {
            Received::Complete(got, bytes) => {
                assert_eq!(got, m);
                assert_eq!(bytes, image);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(store.staged(), None);

        // A signed manifest whose image was swapped in transit: refused at the end.
        let mut bad = image.clone();
        bad[100] ^= 1;
        store.offer(&m, None, None, false).unwrap();
        store.chunk(&m.digest, 0, &bad[..4096]);
        assert_eq!(
            store.chunk(&m.digest, 4096, &bad[4096..]),
            Received::Refused(UpdateRefusal::DigestMismatch)
        );
        assert_eq!(
            store.chunk(&m.digest, 0, &image[..10]),
            Received::Refused(UpdateRefusal::NotOffered),
            "the bad bytes were dropped"
        );
        assert_eq!(
            store.offer(&m, Some("2.0.0"), None, false),
            Err(UpdateRefusal::AlreadyInstalled)
        );
        // An older signed image is a downgrade: refused (2.0.0 after 2.10.0: 10 > 0).
        assert_eq!(
            store.offer(&m, Some("2.10.0"), None, false),
            Err(UpdateRefusal::Older)
        );
        assert_eq!(store.offer(&m, Some("1.9.12"), None, false), Ok(0));
        // A changed manifest no longer verifies.
        let mut forged = m.clone();
        forged.version = "9.9.9".into();
        assert_eq!(
            store.offer(&forged, None, None, false),
            Err(UpdateRefusal::Untrusted)
        );
    }
}
