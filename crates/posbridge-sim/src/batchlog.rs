//! The simulator's batch in a file, so a terminal restarted mid-batch settles the same totals.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use posbridge_wire::{
    Message, OfflineOutcome, SettlementResult, Timestamp, TransactionRequest, TransactionResult,
};

/// An append-only log: each entry is a `u32` big-endian length, then a tag byte — `1` for a
/// result (the command as a native `Transaction` message, `u32`-length-prefixed, then the
/// `TransactionResult` message), `2` for a settlement (a `SettlementResult` message), `3` for
/// the time the first batch opened (`u64` big-endian, ms since 1970; later batches open when the
/// one before is settled) or `4` for the signed final outcome of a payment approved offline (an
/// `OfflineOutcome` message) — synced before the simulator goes on.
#[derive(Debug)]
pub(crate) struct BatchLog {
    file: File,
}

/// An entry read back.
pub(crate) enum Logged {
    Result(TransactionRequest, TransactionResult),
    Settlement(SettlementResult),
    Opened(Timestamp),
    Offline(OfflineOutcome),
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
        4 => match message(body)? {
            Message::OfflineOutcome(o) => Ok(Logged::Offline(o)),
            _ => Err(bad("unexpected message")),
        },
        3 => match <[u8; 8]>::try_from(body) {
            Ok(ms) => Ok(Logged::Opened(Timestamp(u64::from_be_bytes(ms)))),
            Err(_) => Err(bad("batch opening of the wrong length")),
        },
        _ => Err(bad("unknown entry tag")),
    }
}

impl BatchLog {
    /// Opens (creating) the log and reads it back, cutting a torn last entry.
    pub(crate) fn open(path: &Path) -> io::Result<(Self, Vec<Logged>)> {
        let mut file = posbridge_crypto::owner_only::open_append(path)?;
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
        let with_credentials = entries
            .iter()
            .any(|e| matches!(e, Logged::Result(request, _) if request.operator.is_some()));
        if with_credentials {
            file = rewrite(path, &mut entries)?;
        } else if whole < data.len() {
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
        self.append(&result_entry(request, result)?)
    }

    pub(crate) fn append_settlement(&mut self, s: &SettlementResult) -> io::Result<()> {
        self.append(&settlement_entry(s)?)
    }

    pub(crate) fn append_opened(&mut self, at: Timestamp) -> io::Result<()> {
        self.append(&opened_entry(at))
    }

    pub(crate) fn append_offline(&mut self, outcome: &OfflineOutcome) -> io::Result<()> {
        self.append(&offline_entry(outcome)?)
    }
}

fn opened_entry(at: Timestamp) -> Vec<u8> {
    let mut body = vec![3];
    body.extend_from_slice(&at.0.to_be_bytes());
    body
}

/// A result entry's body; the operator credential is never written.
fn result_entry(request: &TransactionRequest, result: &TransactionResult) -> io::Result<Vec<u8>> {
    let mut request = request.clone();
    request.operator = None;
    let req = encode(Message::Transaction(request))?;
    let res = encode(Message::TransactionResult(result.clone()))?;
    let mut body = Vec::with_capacity(req.len() + res.len() + 5);
    body.push(1);
    body.extend_from_slice(&(req.len() as u32).to_be_bytes());
    body.extend_from_slice(&req);
    body.extend_from_slice(&res);
    Ok(body)
}

fn offline_entry(o: &OfflineOutcome) -> io::Result<Vec<u8>> {
    let mut body = vec![4];
    body.extend(encode(Message::OfflineOutcome(o.clone()))?);
    Ok(body)
}

fn settlement_entry(s: &SettlementResult) -> io::Result<Vec<u8>> {
    let mut body = vec![2];
    body.extend(encode(Message::SettlementResult(s.clone()))?);
    Ok(body)
}

/// Writes `entries` without credentials to a new file beside `path` and puts it in its place
/// (synced, then renamed), so the old bytes with a credential are gone from the log.
fn rewrite(path: &Path, entries: &mut [Logged]) -> io::Result<File> {
    let mut data = Vec::new();
    for entry in entries.iter_mut() {
        let body = match entry {
            Logged::Result(request, result) => {
                request.operator = None;
                result_entry(request, result)?
            }
            Logged::Settlement(s) => settlement_entry(s)?,
            Logged::Opened(at) => opened_entry(*at),
            Logged::Offline(o) => offline_entry(o)?,
        };
        data.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(&body);
    }
    let temp = path.with_extension("log.rewrite");
    let _ = std::fs::remove_file(&temp);
    let mut file = posbridge_crypto::owner_only::open_append(&temp)?;
    file.write_all(&data)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_wire::samples;
    use posbridge_wire::{Credential, OperatorAuth, OperatorSecret};

    fn refund_with_pin() -> TransactionRequest {
        let mut request = samples::sale_request();
        request.operator = Some(OperatorAuth {
            operator_id: "manager".into(),
            credential: Credential::Pin(OperatorSecret::new("97531").unwrap()),
        });
        request
    }

    fn temp(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("posbridge-batchlog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        posbridge_crypto::owner_only::create_dir(&dir).unwrap();
        dir
    }

    fn holds(path: &Path, needle: &[u8]) -> bool {
        std::fs::read(path)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
    }

    #[test]
    fn a_logged_command_keeps_no_credential_and_the_file_is_owner_only() {
        let dir = temp("clean");
        let path = dir.join("batch.log");
        let (mut log, _) = BatchLog::open(&path).unwrap();
        log.append_result(&refund_with_pin(), &samples::approved_result())
            .unwrap();
        drop(log);
        assert!(!holds(&path, b"97531"));
        let (_, entries) = BatchLog::open(&path).unwrap();
        assert!(matches!(&entries[..], [Logged::Result(r, _)] if r.operator.is_none()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir), 0o700);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_log_that_holds_a_credential_is_rewritten_without_it() {
        let dir = temp("old");
        let path = dir.join("batch.log");
        // What an earlier version wrote: the command with its credential, then a torn entry.
        let req = encode(Message::Transaction(refund_with_pin())).unwrap();
        let res = encode(Message::TransactionResult(samples::approved_result())).unwrap();
        let mut body = vec![1];
        body.extend_from_slice(&(req.len() as u32).to_be_bytes());
        body.extend_from_slice(&req);
        body.extend_from_slice(&res);
        let mut data = (body.len() as u32).to_be_bytes().to_vec();
        data.extend_from_slice(&body);
        data.extend_from_slice(&[0, 0, 0, 9, 1]);
        std::fs::write(&path, &data).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert!(holds(&path, b"97531"));
        let (mut log, entries) = BatchLog::open(&path).unwrap();
        assert_eq!(entries.len(), 1);
        assert!(!holds(&path, b"97531"));
        assert!(!dir.join("batch.log.rewrite").exists());
        // The rewritten log goes on taking entries, and reads back whole.
        log.append_settlement(&SettlementResult {
            request_id: Default::default(),
            idempotency_key: posbridge_wire::IdempotencyKey::from_u128(5),
            terminal_id: posbridge_wire::TerminalId([1; 16]),
            batch_number: 1,
            status: Ok(()),
            opened: None,
            closed: Timestamp(1),
            totals: Vec::new(),
            receipt: None,
            signature: None,
        })
        .unwrap();
        drop(log);
        let (_, entries) = BatchLog::open(&path).unwrap();
        assert_eq!(entries.len(), 2);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
