//! The terminal's memory of idempotency keys in a file, so that a restarted terminal still
//! answers a repeated key with its original result instead of charging again.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use posbridge_session::{KeyRecord, MemoryResultStore, ResultStore};
use posbridge_wire::{IdempotencyKey, Message};

/// A [`ResultStore`] that keeps every record in an append-only file (each change one
/// length-prefixed entry, synced before `save` returns) and serves reads from memory. Opening
/// replays the file; a torn last entry (a crash mid-write) is ignored, and the file is cut back
/// to the last whole entry.
///
/// Entry: `u32` length (big-endian) of the rest, then the command as a native `Transaction`
/// message, then a `0` byte or a `1` byte and the result as a `TransactionResult` message (each
/// message `u32`-length-prefixed).
#[derive(Debug)]
pub struct FileResultStore {
    path: PathBuf,
    file: File,
    memory: MemoryResultStore,
}

fn message(bytes: &[u8]) -> io::Result<Message> {
    Message::decode(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
}

fn take<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if data.len() < n {
        return None;
    }
    let (head, rest) = data.split_at(n);
    *data = rest;
    Some(head)
}

fn take_u32(data: &mut &[u8]) -> Option<usize> {
    take(data, 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn decode_entry(mut body: &[u8]) -> io::Result<(IdempotencyKey, KeyRecord)> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "damaged result store entry");
    let n = take_u32(&mut body).ok_or_else(bad)?;
    let Message::Transaction(request) = message(take(&mut body, n).ok_or_else(bad)?)? else {
        return Err(bad());
    };
    let result = match take(&mut body, 1).ok_or_else(bad)?[0] {
        0 => None,
        1 => {
            let n = take_u32(&mut body).ok_or_else(bad)?;
            match message(take(&mut body, n).ok_or_else(bad)?)? {
                Message::TransactionResult(r) => Some(r),
                _ => return Err(bad()),
            }
        }
        _ => return Err(bad()),
    };
    Ok((request.idempotency_key, KeyRecord { request, result }))
}

fn encode_entry(record: &KeyRecord) -> io::Result<Vec<u8>> {
    let enc = |m: Message| {
        m.to_bytes()
            .map(|b| b.to_vec())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
    };
    let request = enc(Message::Transaction(record.request.clone()))?;
    let mut body = Vec::with_capacity(request.len() + 256);
    body.extend_from_slice(&(request.len() as u32).to_be_bytes());
    body.extend_from_slice(&request);
    match &record.result {
        None => body.push(0),
        Some(r) => {
            let result = enc(Message::TransactionResult(r.clone()))?;
            body.push(1);
            body.extend_from_slice(&(result.len() as u32).to_be_bytes());
            body.extend_from_slice(&result);
        }
    }
    let mut entry = (body.len() as u32).to_be_bytes().to_vec();
    entry.extend(body);
    Ok(entry)
}

impl FileResultStore {
    /// Every record in the file at `path`, oldest first, as written (a later record of a key
    /// after its earlier one; a torn last entry left out) — the terminal's own record, for
    /// audits and the black-box tests.
    pub fn records(path: impl AsRef<Path>) -> io::Result<Vec<KeyRecord>> {
        let data = std::fs::read(path)?;
        let mut rest = data.as_slice();
        let mut out = Vec::new();
        while let Some(n) = take_u32(&mut rest) {
            let Some(body) = take(&mut rest, n) else {
                break;
            };
            out.push(decode_entry(body)?.1);
        }
        Ok(out)
    }

    /// Opens (creating) the store at `path`, keeping up to `capacity` keys in memory.
    pub fn open(path: impl AsRef<Path>, capacity: usize) -> io::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut file = posbridge_crypto::owner_only::open_append(&path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let mut memory = MemoryResultStore::new(capacity);
        let mut rest = data.as_slice();
        let mut whole = 0;
        while let Some(n) = take_u32(&mut rest) {
            let Some(body) = take(&mut rest, n) else {
                break;
            };
            let (key, record) = decode_entry(body)?;
            memory.save(key, record)?;
            whole = data.len() - rest.len();
        }
        if whole < data.len() {
            // A torn last entry: drop it.
            file.set_len(whole as u64)?;
            file.sync_all()?;
        }
        Ok(Self { path, file, memory })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl ResultStore for FileResultStore {
    fn load(&self, key: &IdempotencyKey) -> Option<KeyRecord> {
        self.memory.load(key)
    }

    fn save(&mut self, key: IdempotencyKey, record: KeyRecord) -> io::Result<()> {
        let entry = encode_entry(&record)?;
        self.file.write_all(&entry)?;
        self.file.sync_data()?;
        self.memory.save(key, record)
    }
}
