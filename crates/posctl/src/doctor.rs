//! `posctl doctor`: diagnoses the way to a terminal step by step and prints the fix for each
//! failure.

use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge::{ClientError, ConnectOptions, NativeClient};
use posbridge_session::{ClientEvent, ClientSecurity, SessionConfig, SessionError};

use crate::commands::{Common, Failure, exit, hello};
use crate::home::Home;

/// `posctl doctor`.
#[derive(clap::Args, Debug)]
pub(crate) struct DoctorArgs {
    /// Check this address instead of the profile's (`host:port`).
    #[arg(long, conflicts_with = "serial")]
    tcp: Option<String>,
    /// Check this serial port instead of the profile's.
    #[arg(long, value_name = "PATH")]
    serial: Option<String>,
    /// The serial port's baud rate (with --serial).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// With --tcp: check TLS against this certificate pin (SHA-256).
    #[arg(long, value_name = "SHA256", requires = "tcp")]
    tls_pin: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

struct Report {
    json: bool,
    worst: Verdict,
    connect_failed: bool,
}

impl Report {
    fn line(&mut self, verdict: Verdict, step: &str, detail: &str, fix: Option<&str>) {
        if verdict == Verdict::Fail {
            self.worst = Verdict::Fail;
        } else if verdict == Verdict::Warn && self.worst == Verdict::Ok {
            self.worst = Verdict::Warn;
        }
        let tag = match verdict {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        if self.json {
            crate::json::print(&crate::json::DoctorStep {
                step,
                result: tag,
                detail,
                fix,
            });
        } else {
            outln!("[{tag:>4}] {step}: {detail}");
            if let Some(f) = fix {
                outln!("       fix: {f}");
            }
        }
    }
}

fn session_fix(e: &SessionError) -> &'static str {
    match e {
        SessionError::NotPaired => {
            "the terminal does not know this till (its pairing was removed or it was reset): pair again with the code on its screen (posctl pair)"
        }
        SessionError::Channel(_) => {
            "the terminal's key is not the one paired (replaced or reset?): pair again, and only if you know why it changed"
        }
        SessionError::UnsupportedVersion { .. } => {
            "the terminal and posctl share no protocol version: update the terminal's firmware or posctl"
        }
        SessionError::HandshakeTimeout | SessionError::Unreachable | SessionError::PeerDead => {
            "bytes go through but no posbridge answer comes: is this the terminal's native-protocol port (not ZVT 20007/22000), and on a serial line the right baud rate?"
        }
        SessionError::LinkClosed => {
            "the terminal closed the connection at once: another till may hold it, or it refuses this protocol on that port"
        }
        _ => "see docs/troubleshooting.md",
    }
}

pub(crate) async fn doctor(args: DoctorArgs) -> Result<u8, Failure> {
    let mut r = Report {
        json: args.common.json,
        worst: Verdict::Ok,
        connect_failed: false,
    };
    if args.common.zvt() {
        return Ok(zvt(&mut r, &args.common).await);
    }
    if args.common.protocol == crate::commands::Protocol::Nexo {
        return Ok(nexo(&mut r, &args.common).await);
    }
    // 1. Where posctl keeps its state, and the profile.
    let home = match Home::locate(args.common.home.as_deref()) {
        Ok(h) => h,
        Err(e) => {
            r.line(
                Verdict::Fail,
                "home",
                &e.to_string(),
                Some("pass --home DIR or set POSBRIDGE_HOME"),
            );
            return Ok(exit::FAILED);
        }
    };
    journal_step(&mut r, &home);
    let profile = home.terminal(args.common.terminal.as_deref());
    let (address, baud, record, pin) = match (&args.tcp, &args.serial, &profile) {
        (Some(t), _, p) => (
            t.clone(),
            None,
            p.as_ref().ok().map(|p| p.2.clone()),
            args.tls_pin.clone(),
        ),
        (None, Some(s), p) => (
            s.clone(),
            Some(args.baud),
            p.as_ref().ok().map(|p| p.2.clone()),
            None,
        ),
        (None, None, Ok((name, p, rec))) => {
            r.line(
                Verdict::Ok,
                "profile",
                &format!("{name}: {} ({})", p.address, rec.peer.name),
                None,
            );
            (
                p.address.clone(),
                p.serial_baud,
                Some(rec.clone()),
                p.tls_pin.clone(),
            )
        }
        (None, None, Err(e)) => {
            r.line(
                Verdict::Fail,
                "profile",
                &e.to_string(),
                Some("pair first: posctl pair --tcp HOST:PORT --code CODE (or --serial PATH), or name one with --tcp/--serial"),
            );
            return Ok(exit::FAILED);
        }
    };
    // 2. The way there.
    let link: Option<Box<dyn posbridge_link::Link>> = match baud {
        Some(baud) => {
            if std::fs::metadata(&address).is_err() {
                r.line(
                    Verdict::Fail,
                    "serial port",
                    &format!("{address} does not exist"),
                    Some("check the cable and the name; posctl discover lists the ports (USB terminals: /dev/ttyACM* or /dev/ttyUSB* on Linux, COMn on Windows)"),
                );
                None
            } else {
                let config = posbridge_serial::SerialConfig {
                    baud,
                    ..posbridge_serial::SerialConfig::default()
                };
                match posbridge_serial::open(&address, &config) {
                    Ok(l) => {
                        r.line(
                            Verdict::Ok,
                            "serial port",
                            &format!("{address} opened at {baud} baud"),
                            None,
                        );
                        Some(Box::new(l))
                    }
                    Err(e) => {
                        let fix = match e {
                            posbridge_serial::SerialError::PermissionDenied { .. } => {
                                "Linux: sudo usermod -aG dialout $USER and log in again, or a udev rule for the VID/PID"
                            }
                            posbridge_serial::SerialError::Busy { .. } => {
                                "another program holds the port (a vendor service, ModemManager): close it; fuser names it"
                            }
                            _ => "see docs/transports.md, serial errors",
                        };
                        r.line(Verdict::Fail, "serial port", &e.to_string(), Some(fix));
                        None
                    }
                }
            }
        }
        None => match tokio::net::lookup_host(&address).await {
            Err(e) => {
                r.line(
                    Verdict::Fail,
                    "address",
                    &format!("{address}: {e}"),
                    Some("give host:port; use the terminal's IP address if its name does not resolve, or posctl discover"),
                );
                None
            }
            Ok(_) => {
                r.line(Verdict::Ok, "address", &format!("{address} resolves"), None);
                let t = Instant::now();
                let mut config = posbridge::tcp::TcpConfig::default();
                config.set_connect_timeout(Duration::from_secs(5));
                match posbridge::tcp::connect(&address, &config).await {
                    Ok(l) => {
                        r.line(
                            Verdict::Ok,
                            "reachable",
                            &format!("TCP connection in {:.0?}", t.elapsed()),
                            None,
                        );
                        match &pin {
                            None => Some(Box::new(l)),
                            Some(pin) => {
                                drop(l);
                                tls(&mut r, &address, pin).await
                            }
                        }
                    }
                    Err(e) => {
                        r.line(
                            Verdict::Fail,
                            "reachable",
                            &e.to_string(),
                            Some("terminal on and on this network (guest Wi-Fi isolates devices)? right port? its cash-register interface enabled?"),
                        );
                        None
                    }
                }
            }
        },
    };
    let Some(link) = link else {
        r.connect_failed = true;
        return Ok(finish(&r));
    };
    // 3. Pairing and the protocol.
    #[cfg(feature = "ble")]
    match posbridge::ble::BleCentral::new().await {
        Ok(_) => r.line(
            Verdict::Ok,
            "Bluetooth",
            "adapter present and powered",
            None,
        ),
        Err(e) => r.line(
            Verdict::Warn,
            "Bluetooth",
            &e.to_string(),
            Some(
                "only needed for Bluetooth terminals: switch the adapter on, grant the permission",
            ),
        ),
    }
    let Some(record) = record else {
        r.line(
            Verdict::Fail,
            "paired",
            "this till has no pairing with a terminal at that address",
            Some("posctl pair with the code on the terminal's screen"),
        );
        return Ok(finish(&r));
    };
    let mut session = SessionConfig::default();
    session.set_heartbeat(Duration::from_secs(1));
    let identity = match home.identity() {
        Ok(i) => Arc::new(i),
        Err(e) => {
            r.line(
                Verdict::Fail,
                "keys",
                &e.to_string(),
                Some("check the permissions of the home directory"),
            );
            return Ok(finish(&r));
        }
    };
    let client = NativeClient::connect(
        link,
        ConnectOptions {
            session,
            identity,
            security: ClientSecurity::Paired {
                terminal_key: record.peer.channel_key,
            },
            hello: hello(),
            timeout: Duration::from_secs(10),
        },
    )
    .await;
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            let fix = match &e {
                ClientError::Connect(s) => session_fix(s),
                ClientError::ConnectTimeout => session_fix(&SessionError::HandshakeTimeout),
                _ => "see docs/troubleshooting.md",
            };
            r.line(Verdict::Fail, "secure session", &e.to_string(), Some(fix));
            r.connect_failed = true;
            return Ok(finish(&r));
        }
    };
    r.line(
        Verdict::Ok,
        "secure session",
        &format!(
            "paired with {} ({}), keys match",
            record.peer.name, record.peer.id
        ),
        None,
    );
    let caps = client.capabilities().clone();
    r.line(
        Verdict::Ok,
        "protocol",
        &format!(
            "version {} = protocol {} (terminal offers {:?}, posctl {:?})",
            caps.selected_version,
            posbridge_wire::version_name(caps.selected_version).unwrap_or("?"),
            caps.protocol_versions,
            hello().protocol_versions
        ),
        None,
    );
    // 4. The clock: from the terminal's heartbeat answers.
    let mut events = client.events();
    let skew = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.recv().await {
                Ok(ClientEvent::Heartbeat {
                    terminal_time: Some(t),
                    ..
                }) => {
                    let local = posbridge::driver::wall_clock();
                    return Some(t.0 as i64 - local.0 as i64);
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten();
    match skew {
        Some(ms) if ms.abs() <= 60_000 => r.line(
            Verdict::Ok,
            "clock",
            &format!("terminal and till agree within {:.1} s", ms.abs() as f64 / 1000.0),
            None,
        ),
        Some(ms) => r.line(
            Verdict::Warn,
            "clock",
            &format!("the terminal's clock is {:+.0} s off this machine's", ms as f64 / 1000.0),
            Some("set the clocks (NTP on the till; the terminal's date menu): receipts, reports and one-time operator codes depend on them"),
        ),
        None => r.line(
            Verdict::Warn,
            "clock",
            "the terminal does not report its clock",
            Some("none needed; compare the time on its receipts with this machine's"),
        ),
    }
    // 5. What it accepts: payments refused for amount or method come from here.
    let code = |c| {
        posbridge_sim::money(0, c)
            .trim_start_matches("0.00 ")
            .to_string()
    };
    let currencies: Vec<String> = caps.currencies.iter().map(|&c| code(c)).collect();
    let limits: Vec<String> = caps
        .limits
        .iter()
        .map(|l| {
            format!(
                "{:?} {} to {}",
                l.kind,
                posbridge_sim::money(l.min, l.currency),
                posbridge_sim::money(l.max, l.currency)
            )
        })
        .collect();
    r.line(
        Verdict::Ok,
        "accepts",
        &format!(
            "currencies {}; methods {:?}; limits: {}",
            currencies.join(", "),
            caps.methods,
            limits.join("; ")
        ),
        None,
    );
    client.close().await;
    Ok(finish(&r))
}

/// The TLS step: the handshake, and the certificate against the pin.
async fn tls(r: &mut Report, address: &str, pin: &str) -> Option<Box<dyn posbridge_link::Link>> {
    let Ok(mut config) = crate::commands::tcp_config(Some(pin)) else {
        r.line(
            Verdict::Fail,
            "TLS",
            &format!("the pin {pin:?} is not a SHA-256 fingerprint"),
            Some("give the 32-byte fingerprint the terminal shows, hex, colons optional"),
        );
        return None;
    };
    config.set_connect_timeout(Duration::from_secs(5));
    match posbridge::tcp::connect(address, &config).await {
        Ok(l) => {
            r.line(
                Verdict::Ok,
                "TLS",
                "handshake done, the certificate matches the pin",
                None,
            );
            Some(Box::new(l))
        }
        Err(e) => {
            let fix = match &e {
                posbridge::tcp::TcpError::PinMismatch { .. } => {
                    "the terminal's certificate is not the pinned one: if it was replaced or re-keyed, pair again and pin the new fingerprint; otherwise stop, someone may be in between"
                }
                _ => "does this port speak TLS? (ZVT: 22001 is TLS, 20007 plain)",
            };
            r.line(Verdict::Fail, "TLS", &e.to_string(), Some(fix));
            None
        }
    }
}

/// The way to a ZVT terminal: the address, the connection, the registration, the status.
/// The way to a nexo terminal, step by step: the configuration, the connection with its TLS
/// certificate, then a diagnosis that proves the shared key.
async fn nexo(r: &mut Report, common: &Common) -> u8 {
    use posbridge_nexo::security::SecurityError;
    use posbridge_nexo::{NexoError, Transport, TransportError};
    let client = match crate::commands::nexo_client(common) {
        Ok(c) => c,
        Err(Failure(_, e)) => {
            r.line(
                Verdict::Fail,
                "configuration",
                &e.to_string(),
                Some("see `posctl --help`: --nexo HOST:PORT, --poi-id, --nexo-ca or --nexo-pin, --nexo-key-id with the passphrase"),
            );
            return finish(r);
        }
    };
    let config = client.config();
    r.line(
        Verdict::Ok,
        "configuration",
        &format!(
            "till {} to terminal {}, {}",
            config.sale_id,
            config.poi_id,
            match &config.key {
                Some(k) => format!("shared key {} version {}", k.identifier(), k.version()),
                None => "messages unencrypted (test terminals only)".into(),
            }
        ),
        None,
    );
    let started = Instant::now();
    match client.transport().ready(Duration::from_secs(10)).await {
        Ok(()) => r.line(
            Verdict::Ok,
            "connection",
            &format!(
                "{} accepted in {} ms{}",
                common.nexo_address.as_deref().unwrap_or_default(),
                started.elapsed().as_millis(),
                if common.plain_http {
                    " (plain HTTP)".to_string()
                } else {
                    format!(
                        ", certificate valid for {}",
                        posbridge_nexo::https::adyen_certificate_name(
                            &config.poi_id,
                            common.nexo_live
                        )
                    )
                }
            ),
            None,
        ),
        Err(e) => {
            r.connect_failed = true;
            let text = e.to_string();
            let fix = if text.contains("TLS") {
                "the terminal's certificate does not chain to --nexo-ca, does not name <POIID>.test.terminal.adyen.com (--poi-id, --nexo-live), or does not match --nexo-pin"
            } else {
                "check the terminal's IP address and that its local Terminal API is on (port 8443)"
            };
            r.line(Verdict::Fail, "connection", &text, Some(fix));
            return finish(r);
        }
    }
    match client.diagnose(Duration::from_secs(15)).await {
        Ok(d) => r.line(
            Verdict::Ok,
            "diagnosis",
            &format!(
                "the terminal answers{}",
                d.poi_status
                    .map(|s| format!(": status {}", s.global_status))
                    .unwrap_or_default()
            ),
            None,
        ),
        Err(e) => {
            r.connect_failed = true;
            let fix = match &e {
                NexoError::Security(SecurityError::Mac) => {
                    "the passphrase differs from the terminal's shared key: check --nexo-passphrase-file or $POSCTL_NEXO_PASSPHRASE"
                }
                NexoError::Security(SecurityError::UnknownKey { .. }) => {
                    "the key identifier or version differs from the terminal's: check --nexo-key-id and --nexo-key-version"
                }
                NexoError::Transport(TransportError::Rejected { text, .. })
                    if text.contains("HMAC") =>
                {
                    "the terminal could not authenticate the request: the passphrase differs from its shared key"
                }
                NexoError::Transport(TransportError::Rejected { text, .. })
                    if text.contains("not configured") || text.contains("key") =>
                {
                    "the terminal and posctl disagree on the shared key (identifier, version, or whether messages are encrypted)"
                }
                NexoError::Unpaired(_) => {
                    "the answer names another till or terminal: check --poi-id and --sale-id"
                }
                _ => "see docs/nexo.md",
            };
            r.line(Verdict::Fail, "diagnosis", &e.to_string(), Some(fix));
        }
    }
    finish(r)
}

async fn zvt(r: &mut Report, common: &Common) -> u8 {
    use posbridge_zvt::client::{ConnectError, ExchangeError, ZvtClient, ZvtConfig};
    use posbridge_zvt::transport::Framing;
    let Some(address) = common.zvt_address.clone() else {
        r.line(
            Verdict::Fail,
            "address",
            "no ZVT terminal named",
            Some("pass --zvt HOST:PORT (ZVT listens on 20007 or 22000), or a serial port with --zvt-baud 9600"),
        );
        return finish(r);
    };
    let (link, framing): (Box<dyn posbridge_link::Link>, Framing) = match common.zvt_baud {
        Some(baud) => match posbridge_serial::open(&address, &crate::commands::zvt_serial(baud)) {
            Ok(l) => {
                r.line(
                    Verdict::Ok,
                    "serial port",
                    &format!("{address} open at {baud} baud, 8N2"),
                    None,
                );
                (Box::new(l), Framing::Serial)
            }
            Err(e) => {
                r.connect_failed = true;
                r.line(
                    Verdict::Fail,
                    "serial port",
                    &e.to_string(),
                    Some("check the path, the cable and that no other program holds the port"),
                );
                return finish(r);
            }
        },
        None => {
            let started = Instant::now();
            match posbridge_tcp::connect(&address, &posbridge_tcp::TcpConfig::default()).await {
                Ok(l) => {
                    r.line(
                        Verdict::Ok,
                        "reachable",
                        &format!(
                            "{address} accepted the connection in {} ms",
                            started.elapsed().as_millis()
                        ),
                        None,
                    );
                    (Box::new(l), Framing::Tcp)
                }
                Err(e) => {
                    r.connect_failed = true;
                    r.line(
                        Verdict::Fail,
                        "reachable",
                        &e.to_string(),
                        Some("check the terminal's IP address and that its ZVT interface is on (ECR interface: LAN, port 20007 or 22000; 22001 is TLS)"),
                    );
                    return finish(r);
                }
            }
        }
    };
    let config = ZvtConfig {
        password: common.zvt_password,
        ..ZvtConfig::default()
    };
    let terminal = match ZvtClient::connect(link, framing, config).await {
        Ok(t) => t,
        Err(e) => {
            r.connect_failed = true;
            let fix = match &e {
                ConnectError::Exchange(ExchangeError::NoAcknowledgement) => {
                    "this port does not answer ZVT: use the terminal's ZVT port (20007 or 22000; 22001 needs TLS), and check that the terminal speaks ZVT (some speak it only over serial, or only their vendor's protocol)"
                }
                ConnectError::Aborted(_) | ConnectError::Exchange(ExchangeError::Refused(_)) => {
                    "the terminal refused the registration: check --zvt-password (000000 by default) and that the currency is the terminal's"
                }
                _ => "check the cable or network, and the baud rate (ZVT: 9600, 8N2)",
            };
            r.line(Verdict::Fail, "ZVT registration", &e.to_string(), Some(fix));
            return finish(r);
        }
    };
    let reg = terminal.registered();
    r.line(
        Verdict::Ok,
        "ZVT registration",
        &format!(
            "terminal id {}, currency {}",
            reg.terminal_id
                .map_or("not sent".into(), |t| format!("{t:08}")),
            reg.currency
                .map_or("not confirmed".into(), |c| c.to_string())
        ),
        None,
    );
    match terminal.status_enquiry(Duration::from_secs(20)).await {
        Ok(s) if s.status == 0 => r.line(
            Verdict::Ok,
            "status enquiry",
            &format!(
                "the terminal is ready (software {}{})",
                s.software_version,
                match terminal.clock_offset() {
                    Some(ms) if ms.abs() >= 60_000 => format!(
                        "; its clock is {:+.1} h off this computer's UTC (local time: expected, recovery allows for it)",
                        ms as f64 / 3_600_000.0
                    ),
                    _ => String::new(),
                }
            ),
            None,
        ),
        Ok(s) => r.line(
            Verdict::Warn,
            "status enquiry",
            &format!("the terminal reports status {:02X}", s.status),
            Some("see the terminal's display; an end-of-day or diagnosis may be due"),
        ),
        Err(ExchangeError::Refused(code)) => r.line(
            Verdict::Warn,
            "status enquiry",
            &format!("the terminal reports result {code:02X}"),
            Some("see the terminal's display; an end-of-day or diagnosis may be due"),
        ),
        Err(e) => r.line(Verdict::Warn, "status enquiry", &e.to_string(), None),
    }
    finish(r)
}

/// The journal: it opens, it is the one this till has kept, SQLite finds every page sound, and
/// every entry reads.
fn journal_step(r: &mut Report, home: &Home) {
    const SALVAGE: &str = "stop taking payments on it: copy journal.db (with journal.db-wal) aside, \
        run `sqlite3 journal.db .recover | sqlite3 recovered.db` on the copy, check it with \
        `posctl journal list` on a home holding it, and put it in place (then `posctl journal \
        adopt`); `posctl journal export` still writes every entry that reads";
    let journal = match home.journal_for_reading() {
        Ok(j) => j,
        Err(e) => {
            r.line(Verdict::Fail, "journal", &e.to_string(), Some(SALVAGE));
            return;
        }
    };
    match home.journal_is_recorded(&journal) {
        Ok(Some(true)) => {}
        Ok(None) => r.line(
            Verdict::Ok,
            "journal identity",
            "not recorded yet (it is at the first payment)",
            None,
        ),
        Ok(Some(false)) => r.line(
            Verdict::Fail,
            "journal identity",
            "journal.db is not the journal this till has kept (lost, truncated or replaced): payments are refused on it",
            Some("put the right journal.db back from a backup, or run `posctl journal adopt` to go on with this one (what was in doubt in the old one is then unknown)"),
        ),
        Err(e) => r.line(Verdict::Fail, "journal identity", &e.to_string(), None),
    }
    match journal.check_integrity() {
        Ok(problems) if problems.is_empty() => {}
        Ok(problems) => {
            r.line(
                Verdict::Fail,
                "journal integrity",
                &format!(
                    "SQLite finds {} problem(s): {}",
                    problems.len(),
                    problems.join("; ")
                ),
                Some(SALVAGE),
            );
            return;
        }
        Err(e) => {
            r.line(
                Verdict::Fail,
                "journal integrity",
                &e.to_string(),
                Some(SALVAGE),
            );
            return;
        }
    }
    match journal.scan(&posbridge::journal::Query::default()) {
        Ok(scan) if scan.damaged.is_empty() => r.line(
            Verdict::Ok,
            "journal",
            &format!(
                "{} entries, every page sound ({})",
                scan.entries.len(),
                home.journal_path().display()
            ),
            None,
        ),
        Ok(scan) => r.line(
            Verdict::Fail,
            "journal entries",
            &format!(
                "{} entr{} cannot be read: {}",
                scan.damaged.len(),
                if scan.damaged.len() == 1 { "y" } else { "ies" },
                scan.damaged
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Some("the other entries are intact (`posctl journal export` writes them); ask the terminal about each damaged key with `posctl status KEY`"),
        ),
        Err(e) => r.line(Verdict::Fail, "journal entries", &e.to_string(), Some(SALVAGE)),
    }
}

fn finish(r: &Report) -> u8 {
    match r.worst {
        Verdict::Ok | Verdict::Warn if !r.connect_failed => {
            if !r.json {
                outln!("everything needed for payments works");
            }
            exit::OK
        }
        _ if r.connect_failed => exit::CONNECT,
        _ => exit::FAILED,
    }
}
