//! The schema, one step per version, applied in order under an advisory lock so that several
//! instances starting at once migrate once.

use tokio_postgres::Client;

use crate::BackofficeError;

/// The steps. A database at version *n* gets steps *n+1…*; one newer than this list is refused.
const MIGRATIONS: &[&str] = &[
    // 1: the chain's administrators, stores and their tills; every journal change, partitioned
    // by the day its entry was made, and each entry's latest state; settlements; quarantine.
    "CREATE TABLE admin_tokens (
        token_sha256 bytea PRIMARY KEY,
        name text NOT NULL
    );
    CREATE TABLE stores (
        id text PRIMARY KEY,
        name text NOT NULL,
        token_sha256 bytea NOT NULL UNIQUE
    );
    CREATE TABLE tills (
        id bytea PRIMARY KEY CHECK (length(id) = 16),
        store text NOT NULL REFERENCES stores (id),
        name text NOT NULL,
        public_key bytea NOT NULL CHECK (length(public_key) = 32),
        registered timestamptz NOT NULL DEFAULT now(),
        last_upload timestamptz
    );
    CREATE INDEX tills_store ON tills (store);
    CREATE TABLE changes (
        till bytea NOT NULL,
        journal bytea NOT NULL,
        seq bigint NOT NULL,
        day date NOT NULL,
        entry_key bytea NOT NULL,
        terminal bytea NOT NULL,
        state text NOT NULL,
        kind text NOT NULL,
        amount_minor bigint,
        currency text,
        outcome text,
        approved_minor bigint,
        tip_minor bigint,
        cashback_minor bigint,
        transaction_id bytea,
        result_time timestamptz,
        signed boolean NOT NULL,
        created timestamptz NOT NULL,
        updated timestamptz NOT NULL,
        request bytea NOT NULL,
        result bytea,
        terminal_key bytea,
        note text,
        received timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (till, journal, seq, day)
    ) PARTITION BY RANGE (day);
    CREATE INDEX changes_entry ON changes (till, entry_key, seq);
    CREATE INDEX changes_day_state ON changes (day, state);
    CREATE INDEX changes_transaction ON changes (transaction_id) WHERE transaction_id IS NOT NULL;
    CREATE INDEX changes_terminal_time ON changes (terminal, result_time) WHERE result_time IS NOT NULL;
    -- An entry's state now: its change with the highest sequence number.
    CREATE VIEW entries_latest AS
        SELECT DISTINCT ON (till, entry_key) *
        FROM changes ORDER BY till, entry_key, seq DESC;
    CREATE TABLE settlements (
        till bytea NOT NULL,
        journal bytea NOT NULL,
        seq bigint NOT NULL,
        key bytea NOT NULL,
        terminal bytea NOT NULL,
        batch_number bigint NOT NULL,
        opened timestamptz,
        closed timestamptz NOT NULL,
        accepted boolean NOT NULL,
        totals jsonb NOT NULL,
        signed boolean NOT NULL,
        result bytea NOT NULL,
        terminal_key bytea,
        recorded timestamptz NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (till, journal, seq)
    );
    CREATE INDEX settlements_terminal ON settlements (terminal, closed);
    CREATE TABLE quarantine (
        till bytea NOT NULL,
        journal bytea NOT NULL,
        seq bigint NOT NULL,
        reason text NOT NULL,
        record jsonb NOT NULL,
        received timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (till, journal, seq)
    );",
    // 2: the entries still open (intent, sent, in doubt), kept on ingest, so that the pages
    // and the in-doubt report need not find every entry's latest change in all of history.
    "CREATE TABLE open_entries (
        till bytea NOT NULL,
        entry_key bytea NOT NULL,
        seq bigint NOT NULL,
        day date NOT NULL,
        state text NOT NULL,
        kind text NOT NULL,
        amount_minor bigint,
        currency text,
        created timestamptz NOT NULL,
        updated timestamptz NOT NULL,
        note text,
        PRIMARY KEY (till, entry_key)
    );
    CREATE INDEX open_entries_updated ON open_entries (updated);
    INSERT INTO open_entries
        SELECT till, entry_key, seq, day, state, kind, amount_minor, currency, created,
            updated, note
        FROM entries_latest WHERE state IN ('intent', 'sent', 'in_doubt');",
];

/// The newest schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`].
pub async fn migrate(client: &mut Client) -> Result<i64, BackofficeError> {
    let tx = client.transaction().await?;
    // One migrating instance at a time; the others wait, then find nothing to do.
    tx.execute("SELECT pg_advisory_xact_lock(7301001)", &[])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS posbridge_schema (
            version bigint PRIMARY KEY,
            applied timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let version: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM posbridge_schema",
            &[],
        )
        .await?
        .get(0);
    if version > SCHEMA_VERSION {
        return Err(BackofficeError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, step) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(step).await?;
        tx.execute(
            "INSERT INTO posbridge_schema (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(SCHEMA_VERSION)
}

/// Makes sure the partitions for `days` (days since 1970) exist. Partitions are made under the
/// same lock as migrations, so two instances never race to make one; days this pool has seen
/// made cost nothing (an upload whose day was dropped since is told by its insert failing, and
/// the pool forgets what it knew).
pub(crate) async fn ensure_partitions(
    db: &crate::Db,
    client: &mut Client,
    days: &[i32],
) -> Result<(), BackofficeError> {
    let missing: Vec<i32> = days
        .iter()
        .copied()
        .filter(|d| !db.knows_partition(*d))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7301001)", &[])
        .await?;
    for &day in &missing {
        let (y, m, d) = posbridge_wire::civil::civil_from_days(i64::from(day));
        let name = format!("changes_{y:04}_{m:02}_{d:02}");
        let exists: bool = tx
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
            .await?
            .get(0);
        if !exists {
            tx.batch_execute(&format!(
                "CREATE TABLE {name} PARTITION OF changes
                 FOR VALUES FROM (DATE '1970-01-01' + {day}) TO (DATE '1970-01-01' + {next})",
                next = day + 1
            ))
            .await?;
        }
    }
    tx.commit().await?;
    for day in missing {
        db.learn_partition(day);
    }
    Ok(())
}
