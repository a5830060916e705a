//! Key stores: permissions, atomic replacement, persistence, refusal of exposed files.

use posbridge_crypto::*;

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("posbridge-keys-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn exercise(store: &dyn KeyStore) {
    assert_eq!(store.load("identity").unwrap(), None);
    store
        .store("identity", &Secret::from(&[1u8; 32][..]))
        .unwrap();
    store
        .store("pairing.0011", &Secret::from(&b"record"[..]))
        .unwrap();
    assert_eq!(
        store.load("identity").unwrap().unwrap().expose(),
        &[1u8; 32]
    );
    // Replacing is all or nothing.
    store
        .store("identity", &Secret::from(&[2u8; 32][..]))
        .unwrap();
    assert_eq!(
        store.load("identity").unwrap().unwrap().expose(),
        &[2u8; 32]
    );
    assert_eq!(store.names().unwrap(), ["identity", "pairing.0011"]);
    assert!(store.delete("pairing.0011").unwrap());
    assert!(!store.delete("pairing.0011").unwrap());
    assert_eq!(store.names().unwrap(), ["identity"]);
    for bad in [
        "",
        ".hidden",
        "../escape",
        "a/b",
        "with space",
        &"x".repeat(65),
    ] {
        assert!(
            matches!(store.load(bad), Err(KeyStoreError::InvalidName(_))),
            "{bad:?}"
        );
        assert!(matches!(
            store.store(bad, &Secret::from(&b"x"[..])),
            Err(KeyStoreError::InvalidName(_))
        ));
    }
}

#[test]
fn memory_store_behaves_like_a_store() {
    let store = MemoryKeyStore::new();
    exercise(&store);
    assert!(!format!("{store:?}").contains("2, 2, 2"));
}

#[test]
fn secrets_never_print() {
    let s = Secret::from(&b"0123456789"[..]);
    assert_eq!(format!("{s:?}"), "Secret(<10 bytes redacted>)");
}

#[cfg(unix)]
#[test]
fn file_store_is_private_atomic_and_persistent() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("file");
    let store = FileKeyStore::open(&dir).unwrap();
    exercise(&store);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("identity.key")), 0o600);
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A new process (a new store on the same directory) sees the same keys.
    let again = FileKeyStore::open(&dir).unwrap();
    assert_eq!(
        again.load("identity").unwrap().unwrap().expose(),
        &[2u8; 32]
    );

    // A signing identity survives a round trip through the store.
    let id = SigningIdentity::generate().unwrap();
    again
        .store("terminal-signing", &Secret::from(&id.to_secret()[..]))
        .unwrap();
    let loaded = again.load("terminal-signing").unwrap().unwrap();
    let restored = SigningIdentity::from_secret(loaded.expose().try_into().unwrap());
    assert_eq!(restored.public_key(), id.public_key());

    // Exposed files and directories are refused, with the fix in the message.
    std::fs::set_permissions(
        dir.join("identity.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = again.load("identity").unwrap_err();
    assert!(
        matches!(err, KeyStoreError::InsecurePermissions { mode: 0o644, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("chmod go-rwx"));
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(
        FileKeyStore::open(&dir),
        Err(KeyStoreError::InsecurePermissions { mode: 0o755, .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_failed_write_leaves_the_old_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("readonly");
    let store = FileKeyStore::open(&dir).unwrap();
    store
        .store("identity", &Secret::from(&[1u8; 32][..]))
        .unwrap();
    // Make the rename fail: the target name is a non-empty directory.
    std::fs::remove_file(dir.join("identity.key")).unwrap();
    std::fs::create_dir(dir.join("identity.key")).unwrap();
    std::fs::write(dir.join("identity.key").join("x"), b"x").unwrap();
    std::fs::set_permissions(
        dir.join("identity.key"),
        std::fs::Permissions::from_mode(0o700),
    )
    .unwrap();
    let err = store
        .store("identity", &Secret::from(&[2u8; 32][..]))
        .unwrap_err();
    assert!(matches!(err, KeyStoreError::Io { .. }), "{err:?}");
    let leftovers = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.')
        })
        .count();
    assert_eq!(
        leftovers, 0,
        "the temporary file is removed after a failed write"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
