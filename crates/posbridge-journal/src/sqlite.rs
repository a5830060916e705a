//! The journal in SQLite.

use std::path::Path;

use posbridge_wire::{
    IdempotencyKey, Message, ProgressStage, PublicKey, SettlementResult, TerminalId, Timestamp,
    TransactionRequest,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::{
    Entry, EntryState, Journal, JournalError, OutboxItem, OutboxRecord, OutboxStatus, Query,
    SettlementRecord, encode_offline, encode_request, encode_result, encode_settlement,
};

/// The schema, one step per version. A database at version *n* gets steps *n+1…* applied in
/// one transaction; one newer than this list is refused.
const MIGRATIONS: &[&str] = &[
    // 1: the entries.
    "CREATE TABLE entries (
        key BLOB PRIMARY KEY NOT NULL,
        terminal BLOB NOT NULL,
        kind INTEGER NOT NULL,
        amount INTEGER,
        currency INTEGER,
        state TEXT NOT NULL,
        stage INTEGER,
        request BLOB NOT NULL,
        result BLOB,
        terminal_key BLOB,
        note TEXT,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL
    );
    CREATE INDEX entries_created ON entries (created);
    CREATE INDEX entries_state ON entries (state);
    CREATE INDEX entries_terminal ON entries (terminal);",
    // 2: entries are never deleted — not even by hand through this schema.
    "CREATE TRIGGER entries_never_deleted BEFORE DELETE ON entries
     BEGIN SELECT RAISE(ABORT, 'journal entries are never deleted'); END;",
    // 3: the journal's identity, made once when the journal is made (a journal from before this
    // version gets one now): a till that records it beside its pairing can tell its own journal
    // from an empty one made in its place after the file was lost, truncated or replaced.
    "CREATE TABLE meta (name TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
     INSERT INTO meta (name, value) VALUES ('identity', randomblob(16));",
    // 4: settlements, and the outbox: every change of an entry's state, result or note and every
    // settlement gets the next sequence number in the same transaction that makes it (triggers,
    // so that no write path can forget), for an uploader to ship in order and exactly once. A
    // journal from before this version queues its whole history now.
    "CREATE TABLE settlements (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key BLOB NOT NULL UNIQUE,
        terminal BLOB NOT NULL,
        result BLOB NOT NULL,
        terminal_key BLOB,
        recorded INTEGER NOT NULL
    );
    CREATE INDEX settlements_terminal ON settlements (terminal);
    CREATE TRIGGER settlements_never_deleted BEFORE DELETE ON settlements
     BEGIN SELECT RAISE(ABORT, 'settlements are never deleted'); END;
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        entry BLOB,
        settlement INTEGER,
        terminal BLOB,
        state TEXT,
        request BLOB,
        result BLOB,
        terminal_key BLOB,
        note TEXT,
        created INTEGER,
        updated INTEGER
    );
    CREATE TRIGGER outbox_entry_inserted AFTER INSERT ON entries BEGIN
        INSERT INTO outbox (entry, terminal, state, request, result, terminal_key, note, created,
            updated)
        VALUES (NEW.key, NEW.terminal, NEW.state, NEW.request, NEW.result, NEW.terminal_key,
            NEW.note, NEW.created, NEW.updated);
    END;
    CREATE TRIGGER outbox_entry_changed AFTER UPDATE ON entries
        WHEN OLD.state IS NOT NEW.state OR OLD.result IS NOT NEW.result
            OR OLD.note IS NOT NEW.note
    BEGIN
        INSERT INTO outbox (entry, terminal, state, request, result, terminal_key, note, created,
            updated)
        VALUES (NEW.key, NEW.terminal, NEW.state, NEW.request, NEW.result, NEW.terminal_key,
            NEW.note, NEW.created, NEW.updated);
    END;
    CREATE TRIGGER outbox_settlement AFTER INSERT ON settlements BEGIN
        INSERT INTO outbox (settlement) VALUES (NEW.id);
    END;
    INSERT INTO outbox (entry, terminal, state, request, result, terminal_key, note, created,
        updated)
        SELECT key, terminal, state, request, result, terminal_key, note, created, updated
        FROM entries ORDER BY created, rowid;
    INSERT INTO meta (name, value) VALUES ('shipped', 0);",
    // 5 (protocol 1.1): the signed final outcome of a payment approved offline (an encoded
    // `OfflineOutcome`), and its two states `offline_pending` and `declined_after` (state is
    // text: no change needed).
    "ALTER TABLE entries ADD COLUMN offline BLOB;",
];

fn storage(e: rusqlite::Error) -> JournalError {
    JournalError::Storage(e.to_string())
}

/// A journal in an SQLite database file: WAL, `synchronous=FULL` (a committed change survives a
/// power cut), a versioned schema with migrations. Several processes may read it; one writes.
#[derive(Debug)]
pub struct SqliteJournal {
    db: Connection,
}

impl SqliteJournal {
    /// The newest schema version this build reads and writes.
    pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

    /// Opens (creating and migrating as needed) the journal at `path`.
    ///
    /// The file is created owner-only (mode `0600`; SQLite gives its `-wal` and `-shm` files the
    /// same mode), and an existing journal that other users may read is made owner-only: it
    /// describes every payment the till took.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, JournalError> {
        let path = path.as_ref();
        owner_only(path).map_err(|e| JournalError::Storage(format!("{}: {e}", path.display())))?;
        Self::setup(Connection::open(path).map_err(storage)?)
    }

    /// A journal in memory (tests).
    pub fn open_in_memory() -> Result<Self, JournalError> {
        Self::setup(Connection::open_in_memory().map_err(storage)?)
    }

    fn setup(mut db: Connection) -> Result<Self, JournalError> {
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(storage)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(storage)?;
        let version: i64 = db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(storage)?;
        if version > Self::SCHEMA_VERSION {
            return Err(JournalError::SchemaTooNew {
                found: version,
                supported: Self::SCHEMA_VERSION,
            });
        }
        if version < Self::SCHEMA_VERSION {
            let tx = db.transaction().map_err(storage)?;
            for step in &MIGRATIONS[version as usize..] {
                tx.execute_batch(step).map_err(storage)?;
            }
            tx.pragma_update(None, "user_version", Self::SCHEMA_VERSION)
                .map_err(storage)?;
            tx.commit().map_err(storage)?;
        }
        Ok(Self { db })
    }

    /// The journal's identity: 16 random bytes made once, when the journal was made. A new,
    /// empty journal made where one was lost (a file truncated to 0 bytes is an empty database
    /// to SQLite) has another: compare it with the identity recorded when the till started using
    /// its journal to notice.
    pub fn identity(&self) -> Result<[u8; 16], JournalError> {
        let value: Vec<u8> = self
            .db
            .query_row("SELECT value FROM meta WHERE name = 'identity'", [], |r| {
                r.get(0)
            })
            .map_err(storage)?;
        value
            .try_into()
            .map_err(|_| corrupt(None, "the journal's identity is not 16 bytes"))
    }

    /// SQLite's own check of every page, index and constraint (`PRAGMA integrity_check`): the
    /// problems found, none when the file is sound.
    pub fn check_integrity(&self) -> Result<Vec<String>, JournalError> {
        let mut stmt = self.db.prepare("PRAGMA integrity_check").map_err(storage)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(storage)?;
        let mut problems = Vec::new();
        for r in rows {
            let line = r.map_err(storage)?;
            if line != "ok" {
                problems.push(line);
            }
        }
        Ok(problems)
    }

    /// Like [`Journal::query`], but an entry that cannot be read is reported in
    /// [`Scan::damaged`] and skipped instead of failing the whole query: to list and export what
    /// is intact from a journal with a damaged entry.
    pub fn scan(&self, query: &Query) -> Result<Scan, JournalError> {
        let mut scan = Scan::default();
        for e in self.rows(query)? {
            match e {
                Ok(e) if query.matches(&e) => scan.entries.push(e),
                Ok(_) => {}
                Err(e) => scan.damaged.push(e),
            }
        }
        Ok(scan)
    }

    /// The rows in the time and terminal range of `query`, oldest first, each read or not.
    fn rows(&self, query: &Query) -> Result<Vec<Result<Entry, JournalError>>, JournalError> {
        // Time range and terminal narrow in SQL (indexed); the rest filters in Rust.
        let mut stmt = self
            .db
            .prepare(&format!(
                "{SELECT} WHERE created >= ?1 AND created < ?2 AND (?3 IS NULL OR terminal = ?3)
                 ORDER BY created, rowid"
            ))
            .map_err(storage)?;
        let from = query.from.map_or(i64::MIN, |t| t.0 as i64);
        let until = query.until.map_or(i64::MAX, |t| t.0 as i64);
        let terminal = query.terminal.map(|t| t.as_bytes().to_vec());
        let rows = stmt
            .query_map(params![from, until, terminal], row)
            .map_err(storage)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(storage)?);
        }
        Ok(out)
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, JournalError> {
        self.db
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(storage)
    }

    /// Up to `limit` changes not yet shipped, oldest first: those after the shipped mark
    /// ([`acknowledge`](Self::acknowledge)). Each carries the bytes as journaled, so that a
    /// damaged one is shipped as it is (for the receiver to quarantine) instead of blocking the
    /// queue.
    pub fn outbox(&self, limit: usize) -> Result<Vec<OutboxRecord>, JournalError> {
        let shipped = self.shipped()?;
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT o.seq, o.entry, o.terminal, o.state, o.request, o.result, o.terminal_key,
                    o.note, o.created, o.updated,
                    s.key, s.terminal, s.result, s.terminal_key, s.recorded
                 FROM outbox o LEFT JOIN settlements s ON s.id = o.settlement
                 WHERE o.seq > ?1 ORDER BY o.seq LIMIT ?2",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![shipped as i64, limit as i64], |r| {
                let seq: i64 = r.get(0)?;
                let entry: Option<Vec<u8>> = r.get(1)?;
                let item = match entry {
                    Some(key) => OutboxItem::Entry {
                        key,
                        terminal: r.get(2)?,
                        state: r.get(3)?,
                        request: r.get(4)?,
                        result: r.get(5)?,
                        terminal_key: r.get(6)?,
                        note: r.get(7)?,
                        created: r.get::<_, i64>(8)? as u64,
                        updated: r.get::<_, i64>(9)? as u64,
                    },
                    None => OutboxItem::Settlement {
                        key: r.get(10)?,
                        terminal: r.get(11)?,
                        result: r.get(12)?,
                        terminal_key: r.get(13)?,
                        recorded: r.get::<_, i64>(14)? as u64,
                    },
                };
                Ok(OutboxRecord {
                    seq: seq as u64,
                    item,
                })
            })
            .map_err(storage)?;
        rows.map(|r| r.map_err(storage)).collect()
    }

    /// The highest sequence number the receiver has committed.
    pub fn shipped(&self) -> Result<u64, JournalError> {
        let v: i64 = self
            .db
            .prepare_cached("SELECT value FROM meta WHERE name = 'shipped'")
            .map_err(storage)?
            .query_row([], |r| r.get(0))
            .map_err(storage)?;
        Ok(v as u64)
    }

    /// The receiver has committed every change up to `seq`: advances the shipped mark (never
    /// backwards) and drops those changes from the queue (the entries and settlements stay).
    /// Durable when it returns; a crash before it returns ships them again, which the receiver
    /// ignores by sequence number.
    pub fn acknowledge(&mut self, seq: u64) -> Result<(), JournalError> {
        let last = self.last_seq()?;
        if seq > last {
            return Err(JournalError::Storage(format!(
                "acknowledged change {seq} was never made (the last is {last}): is this the receiver of another journal?"
            )));
        }
        let tx = self.db.transaction().map_err(storage)?;
        tx.execute(
            "UPDATE meta SET value = max(value, ?1) WHERE name = 'shipped'",
            params![seq as i64],
        )
        .map_err(storage)?;
        tx.execute("DELETE FROM outbox WHERE seq <= ?1", params![seq as i64])
            .map_err(storage)?;
        tx.commit().map_err(storage)
    }

    /// The sequence number of the latest change (0 before the first).
    pub fn last_seq(&self) -> Result<u64, JournalError> {
        let v: Option<i64> = self
            .db
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)?;
        Ok(v.unwrap_or(0) as u64)
    }

    /// How much waits to be shipped, and how old the oldest approved payment among it is.
    pub fn outbox_status(&self) -> Result<OutboxStatus, JournalError> {
        let shipped = self.shipped()?;
        let (unshipped, oldest): (i64, Option<i64>) = self
            .db
            .query_row(
                "SELECT count(*), min(updated) FROM outbox WHERE seq > ?1",
                params![shipped as i64],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(storage)?;
        // The first unshipped final result that approved money (a decline or a refusal moves
        // none): results are read until one is found, oldest first.
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT result, updated FROM outbox
                 WHERE seq > ?1 AND state IN ('done', 'offline_pending') AND result IS NOT NULL
                 ORDER BY seq",
            )
            .map_err(storage)?;
        let mut rows = stmt.query(params![shipped as i64]).map_err(storage)?;
        let mut oldest_approved = None;
        while let Some(r) = rows.next().map_err(storage)? {
            let bytes: Vec<u8> = r.get(0).map_err(storage)?;
            let approved = match Message::decode(&bytes) {
                Ok(Message::TransactionResult(t)) => t.outcome.is_approved(),
                // Damaged: counted as approved, so that the warning errs on the safe side.
                _ => true,
            };
            if approved {
                oldest_approved = Some(Timestamp(r.get::<_, i64>(1).map_err(storage)? as u64));
                break;
            }
        }
        Ok(OutboxStatus {
            shipped,
            last: self.last_seq()?,
            unshipped: unshipped as u64,
            oldest_unshipped: oldest.map(|t| Timestamp(t as u64)),
            oldest_unshipped_approved: oldest_approved,
        })
    }

    /// Runs `f` with commits that reach the operating system but are not synced to disk (WAL
    /// with `synchronous=NORMAL`: atomic, and durable once a later synced commit or checkpoint
    /// happens); back to `FULL` afterwards.
    fn relaxed<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        self.db
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(storage)?;
        let out = f(self);
        self.db
            .pragma_update(None, "synchronous", "FULL")
            .map_err(storage)?;
        out
    }

    fn load(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError> {
        // Statements are prepared once per connection (read and written on every command).
        self.db
            .prepare_cached(&format!("{SELECT} WHERE key = ?1"))
            .map_err(storage)?
            .query_row(params![key.as_bytes().as_slice()], row)
            .optional()
            .map_err(storage)?
            .transpose()
    }

    fn save(&mut self, e: &Entry, insert: bool) -> Result<(), JournalError> {
        let request = encode_request(&e.request)?;
        let result = e.result.as_ref().map(encode_result).transpose()?;
        let offline = e.offline.as_ref().map(encode_offline).transpose()?;
        let amount = e.amount();
        let key = e.key();
        let values = params![
            key.as_bytes().as_slice(),
            e.terminal.as_bytes().as_slice(),
            e.kind() as u8,
            amount.map(|a| a.minor as i64),
            amount.map(|a| a.currency.code()),
            e.state.as_str(),
            e.stage.map(ProgressStage::code),
            request,
            result,
            e.terminal_key.map(|k| k.0.to_vec()),
            e.note,
            e.created.0 as i64,
            e.updated.0 as i64,
            offline,
        ];
        let sql = if insert {
            "INSERT INTO entries (key, terminal, kind, amount, currency, state, stage, request,
                result, terminal_key, note, created, updated, offline)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
        } else {
            "UPDATE entries SET terminal = ?2, kind = ?3, amount = ?4, currency = ?5, state = ?6,
                stage = ?7, request = ?8, result = ?9, terminal_key = ?10, note = ?11,
                created = ?12, updated = ?13, offline = ?14
             WHERE key = ?1"
        };
        self.db
            .prepare_cached(sql)
            .map_err(storage)?
            .execute(values)
            .map_err(storage)?;
        Ok(())
    }
}

const SELECT: &str = "SELECT key, terminal, state, stage, request, result, terminal_key, note,
    created, updated, offline FROM entries";

fn corrupt(key: Option<IdempotencyKey>, reason: impl Into<String>) -> JournalError {
    JournalError::Corrupt {
        key,
        reason: reason.into(),
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Entry, JournalError>> {
    let key: Vec<u8> = r.get(0)?;
    let terminal: Vec<u8> = r.get(1)?;
    let state: String = r.get(2)?;
    let stage: Option<u8> = r.get(3)?;
    let request: Vec<u8> = r.get(4)?;
    let result: Option<Vec<u8>> = r.get(5)?;
    let terminal_key: Option<Vec<u8>> = r.get(6)?;
    let note: Option<String> = r.get(7)?;
    let created: i64 = r.get(8)?;
    let updated: i64 = r.get(9)?;
    let offline: Option<Vec<u8>> = r.get(10)?;
    Ok((|| {
        let key = IdempotencyKey(
            key.try_into()
                .map_err(|_| corrupt(None, "key is not 16 bytes"))?,
        );
        let terminal = TerminalId(
            terminal
                .try_into()
                .map_err(|_| corrupt(Some(key), "terminal id is not 16 bytes"))?,
        );
        let state = EntryState::parse(&state)
            .ok_or_else(|| corrupt(Some(key), format!("unknown state {state:?}")))?;
        let request = match Message::decode(&request) {
            Ok(Message::Transaction(t)) => t,
            Ok(_) => return Err(corrupt(Some(key), "stored request is not a money command")),
            Err(e) => return Err(corrupt(Some(key), format!("stored request: {e}"))),
        };
        let result = match result {
            None => None,
            Some(bytes) => match Message::decode(&bytes) {
                Ok(Message::TransactionResult(r)) => Some(r),
                Ok(_) => return Err(corrupt(Some(key), "stored result is not a result")),
                Err(e) => return Err(corrupt(Some(key), format!("stored result: {e}"))),
            },
        };
        let offline = match offline {
            None => None,
            Some(bytes) => match Message::decode(&bytes) {
                Ok(Message::OfflineOutcome(o)) if o.idempotency_key == key => Some(o),
                Ok(_) => {
                    return Err(corrupt(
                        Some(key),
                        "stored offline outcome is not this entry's",
                    ));
                }
                Err(e) => return Err(corrupt(Some(key), format!("stored offline outcome: {e}"))),
            },
        };
        let terminal_key = match terminal_key {
            None => None,
            Some(k) => {
                Some(PublicKey(k.try_into().map_err(|_| {
                    corrupt(Some(key), "terminal key is not 32 bytes")
                })?))
            }
        };
        if request.idempotency_key != key {
            return Err(corrupt(Some(key), "request's key differs from the entry's"));
        }
        Ok(Entry {
            terminal,
            request,
            state,
            stage: stage.map(ProgressStage::from_code),
            result,
            terminal_key,
            note,
            offline,
            created: Timestamp(created as u64),
            updated: Timestamp(updated as u64),
        })
    })())
}

impl Journal for SqliteJournal {
    fn record_intent(
        &mut self,
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        if let Some(e) = self.load(&request.idempotency_key)? {
            return e.check_intent(request);
        }
        self.save(&Entry::new(terminal, request, terminal_key, now), true)
    }

    fn intent_or_entry(
        &mut self,
        terminal: TerminalId,
        request: &TransactionRequest,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<Option<Entry>, JournalError> {
        if let Some(e) = self.load(&request.idempotency_key)? {
            return Ok(Some(e));
        }
        self.save(&Entry::new(terminal, request, terminal_key, now), true)?;
        Ok(None)
    }

    fn update(
        &mut self,
        key: &IdempotencyKey,
        change: &mut dyn FnMut(&mut Entry) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        let mut e = self.load(key)?.ok_or(JournalError::UnknownKey(*key))?;
        let before = e.clone();
        change(&mut e)?;
        if e != before {
            self.save(&e, false)?;
        }
        Ok(())
    }

    // Not needed for safety (see the trait): written without waiting for the disk, so a sale
    // costs two synced commits (intent, result) rather than two plus one per step.
    fn update_lazily(
        &mut self,
        key: &IdempotencyKey,
        change: &mut dyn FnMut(&mut Entry) -> Result<(), JournalError>,
    ) -> Result<(), JournalError> {
        self.relaxed(|j| j.update(key, change))
    }

    fn get(&self, key: &IdempotencyKey) -> Result<Option<Entry>, JournalError> {
        self.load(key)
    }

    fn record_settlement(
        &mut self,
        result: &SettlementResult,
        terminal_key: Option<PublicKey>,
        now: Timestamp,
    ) -> Result<(), JournalError> {
        let key = result.idempotency_key;
        let kept: Option<Vec<u8>> = self
            .db
            .prepare_cached("SELECT result FROM settlements WHERE key = ?1")
            .map_err(storage)?
            .query_row(params![key.as_bytes().as_slice()], |r| r.get(0))
            .optional()
            .map_err(storage)?;
        if let Some(bytes) = kept {
            return match Message::decode(&bytes) {
                Ok(Message::SettlementResult(k)) if crate::same_settlement(&k, result) => Ok(()),
                Ok(Message::SettlementResult(_)) => Err(JournalError::ConflictingResult(key)),
                _ => Err(corrupt(Some(key), "the kept settlement cannot be read")),
            };
        }
        self.db
            .prepare_cached(
                "INSERT INTO settlements (key, terminal, result, terminal_key, recorded)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(storage)?
            .execute(params![
                key.as_bytes().as_slice(),
                result.terminal_id.as_bytes().as_slice(),
                encode_settlement(result)?,
                terminal_key.map(|k| k.0.to_vec()),
                now.0 as i64,
            ])
            .map_err(storage)?;
        Ok(())
    }

    fn settlements(
        &self,
        terminal: Option<TerminalId>,
    ) -> Result<Vec<SettlementRecord>, JournalError> {
        let mut stmt = self
            .db
            .prepare_cached(
                "SELECT key, result, terminal_key, recorded FROM settlements
                 WHERE ?1 IS NULL OR terminal = ?1 ORDER BY id",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![terminal.map(|t| t.as_bytes().to_vec())], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, Option<Vec<u8>>>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })
            .map_err(storage)?;
        let mut out = Vec::new();
        for r in rows {
            let (key, result, terminal_key, recorded) = r.map_err(storage)?;
            let key = <[u8; 16]>::try_from(key).ok().map(IdempotencyKey);
            let Ok(Message::SettlementResult(result)) = Message::decode(&result) else {
                return Err(corrupt(key, "a kept settlement cannot be read"));
            };
            let terminal_key = terminal_key
                .map(|k| {
                    k.try_into()
                        .map(PublicKey)
                        .map_err(|_| corrupt(key, "terminal key is not 32 bytes"))
                })
                .transpose()?;
            out.push(SettlementRecord {
                result,
                terminal_key,
                recorded: Timestamp(recorded as u64),
            });
        }
        Ok(out)
    }

    fn unresolved(&self) -> Result<Vec<Entry>, JournalError> {
        // Through the state index: read before every money command, it must not scan the
        // journal's history.
        let mut stmt = self
            .db
            .prepare_cached(&format!(
                "{SELECT} WHERE state IN ('intent', 'sent', 'in_doubt') ORDER BY created, rowid"
            ))
            .map_err(storage)?;
        let rows = stmt.query_map([], row).map_err(storage)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r.map_err(storage)??);
        }
        Ok(out)
    }

    fn query(&self, query: &Query) -> Result<Vec<Entry>, JournalError> {
        let mut out = Vec::new();
        for e in self.rows(query)? {
            let e = e?;
            if query.matches(&e) {
                out.push(e);
            }
        }
        Ok(out)
    }
}

/// What [`SqliteJournal::scan`] read.
#[derive(Debug, Default)]
pub struct Scan {
    /// The entries that match, oldest first.
    pub entries: Vec<Entry>,
    /// The entries that could not be read ([`JournalError::Corrupt`], with the key when that
    /// much was readable).
    pub damaged: Vec<JournalError>,
}

/// Creates `path` with mode `0600` when it does not exist, and takes group and other access away
/// from an existing file.
fn owner_only(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        #[cfg(unix)]
        Ok(meta) => {
            use std::os::unix::fs::PermissionsExt;
            let mut permissions = meta.permissions();
            if meta.is_file() && permissions.mode() & 0o077 != 0 {
                permissions.set_mode(permissions.mode() & !0o077);
                std::fs::set_permissions(path, permissions)?;
            }
            Ok(())
        }
        #[cfg(not(unix))]
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            match options.open(path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        }
        Err(e) => Err(e),
    }
}
