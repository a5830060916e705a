//! `posctl update` (install a signed software update on the terminal, native protocol 1.1) and
//! `posctl update-sign` (the publisher's side: sign an image's manifest).

use std::path::PathBuf;

use posbridge::PaymentTerminal;
use posbridge_crypto::SigningIdentity;
use posbridge_wire::{UpdateManifest, UpdateRefusal, UpdateState};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use crate::commands::{Common, Failure, close, connect_terminal, exit, payment_failure, usage};
use crate::home::Home;

/// An update's manifest as a publisher ships it beside the image (JSON).
#[derive(Serialize, Deserialize)]
struct ManifestFile {
    version: String,
    size: u32,
    /// SHA-256 of the image, hex.
    sha256: String,
    /// The publisher's Ed25519 signature, hex.
    signature: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], Failure> {
    let text = text.trim();
    let bad = || usage(format!("{what}: {N} bytes as {} hex digits", N * 2));
    if text.len() != N * 2 {
        return Err(bad());
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(out)
}

/// `posctl update`.
#[derive(clap::Args, Debug)]
pub(crate) struct UpdateArgs {
    /// The image.
    image: PathBuf,
    /// Its manifest (JSON: version, size, sha256, signature), as the publisher ships it.
    #[arg(long)]
    manifest: PathBuf,
    #[command(flatten)]
    common: Common,
}

pub(crate) async fn update(args: UpdateArgs) -> Result<u8, Failure> {
    let image =
        std::fs::read(&args.image).map_err(|e| usage(format!("{}: {e}", args.image.display())))?;
    let text = std::fs::read_to_string(&args.manifest)
        .map_err(|e| usage(format!("{}: {e}", args.manifest.display())))?;
    let file: ManifestFile = serde_json::from_str(&text)
        .map_err(|e| usage(format!("{}: {e}", args.manifest.display())))?;
    let manifest = UpdateManifest {
        version: file.version,
        size: file.size,
        digest: unhex(&file.sha256, "sha256")?,
        signature: unhex(&file.signature, "signature")?,
    };
    if image.len() != manifest.size as usize
        || sha2::Sha256::digest(&image).as_slice() != manifest.digest
    {
        return Err(usage(
            "the image is not the one its manifest names (size or SHA-256): nothing was sent",
        ));
    }
    let home = Home::locate(args.common.home.as_deref())?;
    let terminal = connect_terminal(&home, &args.common).await?;
    let json = args.common.json;
    let progress = |have: u32, of: u32| {
        if !json {
            errln!("sent {have} of {of} bytes");
        }
    };
    let state = terminal
        .update(&manifest, &image, &progress)
        .await
        .map_err(payment_failure);
    close(terminal).await;
    let Some(state) = state? else {
        return Err(Failure(
            exit::FAILED,
            "this terminal takes no software updates over posbridge (native protocol 1.1 does)"
                .into(),
        ));
    };
    let (text, code, reason) = match &state {
        UpdateState::Installed { version } => (
            format!("installed: the terminal restarts with version {version}"),
            exit::OK,
            None,
        ),
        // Installed before, its answer lost with the connection (or run twice): done.
        UpdateState::Refused(UpdateRefusal::AlreadyInstalled) => (
            format!("already installed: the terminal runs {}", manifest.version),
            exit::OK,
            None,
        ),
        UpdateState::Refused(r) => {
            let (why, name) = match r {
                UpdateRefusal::Untrusted => (
                    "not signed by the publisher the terminal trusts",
                    "untrusted",
                ),
                UpdateRefusal::BatteryLow => (
                    "battery too low: charge the terminal and run this again",
                    "battery_low",
                ),
                UpdateRefusal::PaymentRunning => (
                    "a payment is running: run this again when it has ended (what was sent is kept)",
                    "payment_running",
                ),
                UpdateRefusal::AlreadyInstalled => ("already installed", "already_installed"),
                UpdateRefusal::NotOffered => (
                    "the terminal lost the transfer: run this again",
                    "not_offered",
                ),
                UpdateRefusal::DigestMismatch => (
                    "the image arrived damaged and was dropped: run this again",
                    "digest_mismatch",
                ),
                UpdateRefusal::InstallFailed => (
                    "installing failed: the terminal runs the version it ran before",
                    "install_failed",
                ),
                UpdateRefusal::Older => (
                    "older than the version the terminal runs: a downgrade",
                    "older",
                ),
                _ => ("refused", "other"),
            };
            (format!("refused: {why}"), exit::FAILED, Some(name))
        }
        other => (format!("{other:?}"), exit::FAILED, Some("other")),
    };
    if json {
        crate::json::print(&Outcome {
            installed: matches!(state, UpdateState::Installed { .. }),
            version: manifest.version,
            refused: reason,
        });
    } else {
        outln!("{text}");
    }
    Ok(code)
}

#[derive(Serialize)]
struct Outcome {
    installed: bool,
    version: String,
    /// Why it was refused: `untrusted`, `battery_low`, `payment_running`, `already_installed`,
    /// `not_offered`, `digest_mismatch`, `install_failed`.
    refused: Option<&'static str>,
}

/// `posctl update-sign`: the publisher's side.
#[derive(clap::Args, Debug)]
pub(crate) struct UpdateSignArgs {
    /// The image.
    image: PathBuf,
    /// The version it installs: dotted numbers (`2.4.1`), so that terminals can order versions
    /// and refuse an older image (a downgrade).
    #[arg(long)]
    version: String,
    /// The publisher's Ed25519 secret key: 64 hex digits in a file only its owner can read.
    #[arg(long)]
    key_file: PathBuf,
    /// Where to write the manifest (JSON).
    #[arg(long)]
    out: PathBuf,
}

pub(crate) fn update_sign(args: UpdateSignArgs) -> Result<u8, Failure> {
    let image =
        std::fs::read(&args.image).map_err(|e| usage(format!("{}: {e}", args.image.display())))?;
    let size = u32::try_from(image.len())
        .ok()
        .filter(|s| (1..=posbridge_wire::MAX_UPDATE_SIZE).contains(s))
        .ok_or_else(|| usage("an image is 1 byte to 64 MiB"))?;
    if args.version.is_empty() || args.version.len() > 64 {
        return Err(usage("--version: 1 to 64 bytes"));
    }
    let dotted = args
        .version
        .split('.')
        .all(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()));
    if !dotted {
        return Err(usage(format!(
            "--version {:?}: dotted numbers (2.4.1), so that terminals can refuse an older image — they cannot order other version names",
            args.version
        )));
    }
    let secret = zeroize::Zeroizing::new(unhex::<32>(
        &crate::secret::read_private(&args.key_file, "--key-file")?,
        "--key-file",
    )?);
    let publisher = SigningIdentity::from_secret(&secret);
    let mut manifest = UpdateManifest {
        version: args.version,
        size,
        digest: sha2::Sha256::digest(&image).into(),
        signature: [0; 64],
    };
    publisher.sign_update(&mut manifest);
    let file = ManifestFile {
        version: manifest.version,
        size,
        sha256: hex(&manifest.digest),
        signature: hex(&manifest.signature),
    };
    let text = serde_json::to_string_pretty(&file).map_err(|e| Failure(exit::FAILED, e.into()))?;
    std::fs::write(&args.out, text + "\n")
        .map_err(|e| Failure(exit::FAILED, format!("{}: {e}", args.out.display()).into()))?;
    outln!(
        "signed {} for publisher key {} (terminals trust it with posbridge-sim --update-key)",
        args.out.display(),
        publisher.public_key()
    );
    Ok(exit::OK)
}
