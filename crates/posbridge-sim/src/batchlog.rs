//! The simulator's batch in a file, so a terminal restarted mid-batch settles the same totals.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;

use posbridge_wire::{Message, SettlementResult, TransactionRequest, TransactionResult};

/// An append-only log: each entry is a `u32` big-endian length, then a tag byte — `1` for a
/// result (the command as a native `Transaction` message, `u32`-length-prefixed, then the
/// `TransactionResult` message) or `2` for a settlement (a `SettlementResult` message) — synced
/// before the simulator goes on.
#[derive(Debug)]
pub(crate) struct BatchLog {
    file: File,
}

/// An entry read back.
pub(crate) enum Logged {
    Result(TransactionRequest, TransactionResult),
    Settlement(SettlementResult),
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("damaged batch log: {what}"),
    )
}

fn encode(m: Message) -> io::Result<Vec<u8>> {
    m.to_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))
}

fn split<'a>(data: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    (data.len() >= n).then(|| {
        let (head, rest) = data.split_at(n);
        *data = rest;
        head
    })
}

fn split_u32(data: &mut &[u8]) -> Option<usize> {
    split(data, 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

fn decode(mut body: &[u8]) -> io::Result<Logged> {
    let tag = split(&mut body, 1).ok_or_else(|| bad("empty entry"))?[0];
    let message = |bytes: &[u8]| {
        Message::decode(bytes)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
    };
    match tag {
        1 => {
            let n = split_u32(&mut body).ok_or_else(|| bad("short entry"))?;
            let request = split(&mut body, n).ok_or_else(|| bad("short entry"))?;
            match (message(request)?, message(body)?) {
                (Message::Transaction(req), Message::TransactionResult(res)) => {
                    Ok(Logged::Result(req, res))
                }
                _ => Err(bad("unexpected messages")),
            }
        }
        2 => match message(body)? {
            Message::SettlementResult(s) => Ok(Logged::Settlement(s)),
            _ => Err(bad("unexpected message")),
        },
        _ => Err(bad("unknown entry tag")),
    }
}

impl BatchLog {
    /// Opens (creating) the log and reads it back, cutting a torn last entry.
    pub(crate) fn open(path: &Path) -> io::Result<(Self, Vec<Logged>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let mut rest = data.as_slice();
        let mut entries = Vec::new();
        let mut whole = 0;
        while let Some(n) = split_u32(&mut rest) {
            let Some(body) = split(&mut rest, n) else {
                break;
            };
            entries.push(decode(body)?);
            whole = data.len() - rest.len();
        }
        if whole < data.len() {
            file.set_len(whole as u64)?;
            file.sync_all()?;
        }
        Ok((Self { file }, entries))
    }

    fn append(&mut self, body: &[u8]) -> io::Result<()> {
        let mut entry = Vec::with_capacity(body.len() + 4);
        entry.extend_from_slice(&(body.len() as u32).to_be_bytes());
        entry.extend_from_slice(body);
        self.file.write_all(&entry)?;
        self.file.sync_data()
    }

    pub(crate) fn append_result(
        &mut self,
        request: &TransactionRequest,
        result: &TransactionResult,
    ) -> io::Result<()> {
        let req = encode(Message::Transaction(request.clone()))?;
        let res = encode(Message::TransactionResult(result.clone()))?;
        let mut body = Vec::with_capacity(req.len() + res.len() + 5);
        body.push(1);
        body.extend_from_slice(&(req.len() as u32).to_be_bytes());
        body.extend_from_slice(&req);
        body.extend_from_slice(&res);
        self.append(&body)
    }

    pub(crate) fn append_settlement(&mut self, s: &SettlementResult) -> io::Result<()> {
        let mut body = vec![2];
        body.extend(encode(Message::SettlementResult(s.clone()))?);
        self.append(&body)
    }
}
