//! `posbridge-backoffice`: run the back office, make its schema, add stores.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use posbridge_backoffice::{Db, add_admin, add_store, schema, server};

/// A chain's back office: every till's journal in one PostgreSQL.
#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    /// The database (a libpq connection string: `host=127.0.0.1 port=5432 user=posbridge
    /// dbname=backoffice`; several hosts with `target_session_attrs=read-write` to follow a
    /// failover). Default: $POSBRIDGE_BACKOFFICE_DB.
    #[arg(long, env = "POSBRIDGE_BACKOFFICE_DB")]
    db: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Brings the database to this build's schema.
    Migrate,
    /// Adds an administrator of the whole chain and prints their token (shown once: it reads
    /// every store's reports and pages).
    AddAdmin {
        /// Who it is for.
        #[arg(long)]
        name: String,
    },
    /// Adds a store and prints its token (shown once: the store registers its tills with it).
    AddStore {
        /// The store's id (`berlin-mitte`).
        #[arg(long)]
        id: String,
        /// Its name.
        #[arg(long)]
        name: String,
    },
    /// Serves uploads and registrations (migrating first).
    Serve {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:8600")]
        listen: String,
        /// The TLS certificate chain (PEM); without it the service speaks plain HTTP (behind a
        /// TLS-terminating proxy, or on one machine).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<std::path::PathBuf>,
        /// The TLS private key (PKCS#8 PEM).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<std::path::PathBuf>,
        /// Connections to the database.
        #[arg(long, default_value_t = 16)]
        pool: usize,
    },
}

async fn run(cli: Cli) -> Result<(), String> {
    let pool = match &cli.command {
        Command::Serve { pool, .. } => *pool,
        _ => 1,
    };
    let db = Db::new(&cli.db, pool).map_err(|e| e.to_string())?;
    match cli.command {
        Command::Migrate => {
            let mut conn = db.get().await.map_err(|e| e.to_string())?;
            let v = schema::migrate(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            println!("schema version {v}");
        }
        Command::AddAdmin { name } => {
            let mut conn = db.get().await.map_err(|e| e.to_string())?;
            schema::migrate(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            drop(conn);
            let token = add_admin(&db, &name).await.map_err(|e| e.to_string())?;
            println!("{token}");
        }
        Command::AddStore { id, name } => {
            let mut conn = db.get().await.map_err(|e| e.to_string())?;
            schema::migrate(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            drop(conn);
            let token = add_store(&db, &id, &name)
                .await
                .map_err(|e| e.to_string())?;
            println!("{token}");
        }
        Command::Serve {
            listen,
            tls_cert,
            tls_key,
            ..
        } => {
            let mut conn = db.get().await.map_err(|e| e.to_string())?;
            schema::migrate(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            drop(conn);
            let tls = match (tls_cert, tls_key) {
                (Some(c), Some(k)) => Some(posbridge_tcp::TlsServerConfig::from_pem_files(
                    &c,
                    &k,
                    posbridge_tcp::TlsVersions::Tls12AndTls13,
                )?),
                _ => None,
            };
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .map_err(|e| format!("{listen}: {e}"))?;
            eprintln!(
                "posbridge-backoffice: serving on {} ({})",
                listener.local_addr().map_err(|e| e.to_string())?,
                if tls.is_some() { "HTTPS" } else { "HTTP" }
            );
            tokio::select! {
                r = server::serve(listener, tls, db) => r.map_err(|e| e.to_string())?,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("posbridge-backoffice: {e}");
            ExitCode::FAILURE
        }
    }
}
