//! A throw-away PostgreSQL cluster for tests and load runs: `initdb` in a temporary directory,
//! the server on 127.0.0.1 and a unix socket in that directory, stopped and removed when
//! dropped. Run as root (CI), the cluster belongs to the `postgres` user, since PostgreSQL
//! refuses to run as root.
//!
//! The binaries are found in `$POSBRIDGE_PG_BIN`, else `pg_config --bindir`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian), else `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use posbridge_crypto::{LocalIdentity, PeerId, SigningIdentity, StaticKeypair};

/// The identity of load-test till `index`: made from the index, so that the test registers the
/// same keys the tills process signs with.
pub fn load_till_identity(index: u32) -> LocalIdentity {
    let mut id = [0x10u8; 16];
    id[12..].copy_from_slice(&index.to_be_bytes());
    let mut secret = [0x5au8; 32];
    secret[28..].copy_from_slice(&index.to_be_bytes());
    LocalIdentity::from_parts(
        PeerId(id),
        &format!("load till {index}"),
        StaticKeypair::generate().expect("random"),
        SigningIdentity::from_secret(&secret),
    )
}

/// A running PostgreSQL cluster of its own.
#[derive(Debug)]
pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `Some("postgres")` when commands run as that user (we are root).
    run_as: Option<String>,
}

fn find_bin() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("POSBRIDGE_PG_BIN") {
        return Some(PathBuf::from(d));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if d.join("initdb").is_file() {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").is_file() && p.join("pg_ctl").is_file())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl PgCluster {
    /// Makes and starts a cluster; `Err` says why none can be had here (no PostgreSQL
    /// installed, no `postgres` user to run it as root).
    pub fn start() -> Result<Self, String> {
        let bin = find_bin()
            .ok_or("no PostgreSQL found (apt-get install postgresql, or set POSBRIDGE_PG_BIN)")?;
        let run_as = if is_root() {
            let has_user = Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|o| o.status.success());
            if !has_user {
                return Err(
                    "running as root and there is no `postgres` user to run PostgreSQL as".into(),
                );
            }
            Some("postgres".to_owned())
        } else {
            None
        };
        let dir = std::env::temp_dir().join(format!(
            "posbridge-pg-{}-{}",
            std::process::id(),
            free_port().map_err(|e| e.to_string())?
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cluster = Self {
            port: free_port().map_err(|e| e.to_string())?,
            dir,
            bin,
            run_as,
        };
        if let Some(user) = &cluster.run_as {
            let ok = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&cluster.dir)
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot give {} to {user}", cluster.dir.display()));
            }
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "posbridge",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        cluster.pg_ctl_start()?;
        Ok(cluster)
    }

    /// [`start`](Self::start), or `None` with the reason printed — except under `CI=true`,
    /// where a missing PostgreSQL is a failure (CI installs it).
    pub fn start_or_skip() -> Option<Self> {
        match Self::start() {
            Ok(c) => Some(c),
            Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("PostgreSQL is required under CI: {why}")
            }
            Err(why) => {
                println!("skipped: {why}");
                None
            }
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(&self.dir)
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{tool} failed: {}{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
            ))
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &self.dir.join("server.log").display().to_string(),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        )
        .map(|_| ())
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory the cluster lives in (its data in `data/`, its log in `server.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A connection string for database `dbname`.
    pub fn url(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=posbridge dbname={dbname} connect_timeout=5",
            self.port
        )
    }

    /// Makes database `name` and returns its connection string.
    pub async fn create_database(&self, name: &str) -> Result<String, String> {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.url(name))
    }

    /// A streaming-replication standby of this cluster (`pg_basebackup -R`), started on a port of
    /// its own; with `synchronous`, this cluster then waits for the standby before it reports a
    /// commit (`synchronous_standby_names = '*'`), so that what it acknowledged is on both.
    pub fn start_standby(&self, synchronous: bool) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "posbridge-pg-standby-{}-{}",
            std::process::id(),
            free_port().map_err(|e| e.to_string())?
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let standby = Self {
            port: free_port().map_err(|e| e.to_string())?,
            dir,
            bin: self.bin.clone(),
            run_as: self.run_as.clone(),
        };
        if let Some(user) = &standby.run_as {
            Command::new("chown")
                .arg(format!("{user}:"))
                .arg(&standby.dir)
                .status()
                .map_err(|e| e.to_string())?;
        }
        standby.run(
            "pg_basebackup",
            &[
                "-D",
                &standby.data().display().to_string(),
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "posbridge",
                "-X",
                "stream",
                "-R",
                "--checkpoint=fast",
                "--no-sync",
            ],
        )?;
        standby.pg_ctl_start()?;
        if synchronous {
            self.psql("ALTER SYSTEM SET synchronous_standby_names = '*'")?;
            self.psql("SELECT pg_reload_conf()")?;
            // Until the standby reports itself synchronous, commits would not wait for it.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let state = self.psql("SELECT sync_state FROM pg_stat_replication")?;
                if state.trim() == "sync" {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!("the standby did not become synchronous: {state:?}"));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        Ok(standby)
    }

    /// Promotes this standby to a primary (`pg_ctl promote`, waiting until it takes writes).
    pub fn promote(&self) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-w",
                "-t",
                "60",
                "promote",
            ],
        )
        .map(|_| ())
    }

    /// Runs one statement with `psql` on database `postgres`; its output, unaligned.
    pub fn psql(&self, sql: &str) -> Result<String, String> {
        self.run(
            "psql",
            &[
                "-X",
                "-A",
                "-t",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "posbridge",
                "-d",
                "postgres",
                "-c",
                sql,
            ],
        )
    }

    /// Stops the server at once, as a crash would (`pg_ctl stop -m immediate`: no checkpoint,
    /// recovery from the WAL at the next start).
    pub fn crash(&self) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "stop",
            ],
        )
        .map(|_| ())
    }

    /// Starts the server again after [`crash`](Self::crash).
    pub fn restart(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
