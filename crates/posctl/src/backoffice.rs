//! `posctl backoffice`: the chain's reports from a posbridge back office.

use crate::commands::{Failure, exit};

/// The variable that holds the back office token (an administrator's or a store's).
pub(crate) const TOKEN_VARIABLE: &str = "POSBRIDGE_BACKOFFICE_TOKEN";

/// `posctl backoffice report`.
#[derive(clap::Args, Debug)]
pub(crate) struct BackofficeArgs {
    /// The report: `totals` (per store, till, terminal, day, currency, kind), `settlements`
    /// (each against the journals), `in-doubt`, `duplicates` (a transaction id booked twice),
    /// `silent-tills`.
    report: String,
    /// The back office (`host:port`).
    #[arg(long)]
    backoffice: String,
    /// A file holding the token (else $POSBRIDGE_BACKOFFICE_TOKEN; never on the command line,
    /// where other users see it).
    #[arg(long, value_name = "PATH")]
    token_file: Option<std::path::PathBuf>,
    /// HTTPS, the back office's certificate pinned to this SHA-256 fingerprint (without it:
    /// plain HTTP, for a back office on this machine or a private network).
    #[arg(long, value_name = "SHA256")]
    tls_pin: Option<String>,
    /// The first day (`YYYY-MM-DD`; totals and settlements; default a week before `--to`).
    #[arg(long)]
    from: Option<String>,
    /// The day after the last (default tomorrow).
    #[arg(long)]
    to: Option<String>,
    /// In doubt for longer than this (minutes; default 60).
    #[arg(long)]
    older_than_minutes: Option<u64>,
    /// Silent for longer than this (minutes; default 60).
    #[arg(long)]
    quiet_minutes: Option<u64>,
    /// CSV instead of JSON.
    #[arg(long)]
    csv: bool,
}

fn token(args: &BackofficeArgs) -> Result<String, Failure> {
    let token = match &args.token_file {
        Some(path) => crate::secret::read_private(path, "--token-file")?,
        None => std::env::var(TOKEN_VARIABLE).map_err(|_| {
            Failure(
                exit::USAGE,
                format!("give the token in ${TOKEN_VARIABLE} or --token-file PATH").into(),
            )
        })?,
    };
    Ok(token.trim().to_owned())
}

pub(crate) async fn report(args: BackofficeArgs) -> Result<u8, Failure> {
    let token = token(&args)?;
    let addr = tokio::net::lookup_host(&args.backoffice)
        .await
        .map_err(|e| Failure(exit::CONNECT, format!("{}: {e}", args.backoffice).into()))?
        .next()
        .ok_or_else(|| {
            Failure(
                exit::CONNECT,
                format!("{}: no address", args.backoffice).into(),
            )
        })?;
    let tls = match &args.tls_pin {
        Some(pin) => {
            let pin: posbridge_tcp::Fingerprint = pin.parse().map_err(|_| {
                Failure(
                    exit::USAGE,
                    format!("TLS pin {pin:?}: expected 32 hex bytes (colons optional)").into(),
                )
            })?;
            Some(posbridge_tcp::TlsClientConfig::new(
                "posbridge-backoffice",
                posbridge_tcp::ServerVerification::Pinned(vec![pin]),
                posbridge_tcp::TlsVersions::Tls12AndTls13,
            )?)
        }
        None => None,
    };
    let mut query = vec![format!("format={}", if args.csv { "csv" } else { "json" })];
    for (name, value) in [
        ("from", args.from.clone()),
        ("to", args.to.clone()),
        (
            "older_than_minutes",
            args.older_than_minutes.map(|m| m.to_string()),
        ),
        ("quiet_minutes", args.quiet_minutes.map(|m| m.to_string())),
    ] {
        if let Some(v) = value {
            // Dates and numbers only: nothing to escape, and anything else is refused there.
            if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(Failure(exit::USAGE, format!("--{name} {v:?}").into()));
            }
            query.push(format!("{name}={v}"));
        }
    }
    let client = posbridge_tcp::http::HttpClient::new(addr, tls);
    let path = format!("/v1/reports/{}?{}", args.report, query.join("&"));
    let authorization = format!("Bearer {token}");
    let (status, body) = client
        .get(
            &path,
            &[("authorization", authorization.as_str())],
            64 << 20,
        )
        .await
        .map_err(|e| Failure(exit::CONNECT, e.into()))?;
    let text = String::from_utf8_lossy(&body);
    if status != 200 {
        let code = if status == 400 || status == 404 {
            exit::USAGE
        } else {
            exit::FAILED
        };
        return Err(Failure(
            code,
            format!("the back office answered {status}: {}", text.trim()).into(),
        ));
    }
    outln!("{}", text.trim_end());
    Ok(exit::OK)
}
