//! A scripted terminal for tests of code written against [`PaymentTerminal`](crate::PaymentTerminal)
//! (feature `testing`): an [`Adapter`] that needs no connection, whose next commands do what the
//! test says — approve, decline, refuse, lose the answer after taking the money, lose the
//! command before the terminal took it, fail to send — and that remembers what it charged, so
//! a test can check that nothing was charged twice and nothing charged went unrecorded.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use posbridge_journal::Entry;
use posbridge_wire::{
    Capabilities, DeclineReason, ErrorCode, FeatureSet, IdempotencyKey, KindSet, MethodSet,
    OperatorAuth, Outcome, Receipt, ReceiptCopy, RequestId, SettlementResult, TerminalId,
    Timestamp, TransactionId, TransactionRef, TransactionRequest, TransactionResult,
};

use crate::{Adapter, Answer, CallError, DoubtReason, Exchange, Records, Refusal, Resolution};

/// What the scripted terminal does with the next command sent to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Script {
    /// Approves it.
    Approve,
    /// Declines it (the card's issuer said no).
    Decline,
    /// Refuses it before starting (nothing charged).
    Refuse,
    /// Takes it and charges, and the answer is lost on the way back.
    LoseAnswer,
    /// The command is lost on the way there: the terminal never sees it.
    LoseCommand,
    /// The connection is gone before the command leaves.
    NotSent,
    /// Takes it and charges, then answers with something that cannot be read.
    Garble,
    /// The command leaves and no answer ever comes (the call waits until it is dropped).
    Hang,
}

/// Why the scripted terminal failed a call.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptError {
    /// The scripted connection "broke".
    Broken,
    /// The scripted answer could not be read.
    Garbled,
    /// The scripted terminal cannot tell (it was told to, for recovery tests).
    CannotTell,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Broken => "the scripted connection broke",
            Self::Garbled => "the scripted answer could not be read",
            Self::CannotTell => "the scripted terminal cannot tell",
        })
    }
}

impl std::error::Error for ScriptError {}

#[derive(Default)]
struct State {
    script: VecDeque<Script>,
    /// What the terminal did, by key (a terminal that remembers keys answers from it).
    done: HashMap<IdempotencyKey, TransactionResult>,
    /// Its last transaction (a terminal that does not remember keys answers from it).
    last: Option<TransactionResult>,
    /// Every charge, in order (a key twice is a double charge).
    charges: Vec<IdempotencyKey>,
    /// Commands that reached it.
    seen: u64,
    /// Resolve answers "cannot tell" this many more times.
    undecided: u32,
}

/// A terminal that does what the test scripted (see the module).
pub struct ScriptedTerminal {
    capabilities: Capabilities,
    remembers_keys: bool,
    state: Mutex<State>,
}

impl fmt::Debug for ScriptedTerminal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScriptedTerminal")
            .field("remembers_keys", &self.remembers_keys)
            .finish_non_exhaustive()
    }
}

/// The capabilities of the scripted terminal: every kind and method, euros, no limits.
pub fn capabilities() -> Capabilities {
    Capabilities {
        terminal_id: TerminalId([0x5C; 16]),
        model: Some("posbridge scripted terminal".into()),
        firmware: None,
        serial_number: None,
        merchant_name: None,
        protocol_versions: vec![1],
        selected_version: 1,
        kinds: KindSet::all(),
        methods: MethodSet::all(),
        currencies: vec![posbridge_wire::Currency::EUR],
        limits: Vec::new(),
        max_frame_size: None,
        features: FeatureSet::default(),
        offline_limits: Vec::new(),
    }
}

/// The unsigned result the scripted terminal makes of `request` with `outcome`: its key, a
/// transaction id equal to the key, the amount asked for (approved in full when approved), at a
/// fixed time.
pub fn result_of(request: &TransactionRequest, outcome: Outcome) -> TransactionResult {
    let amount = request
        .command
        .amount()
        .unwrap_or(posbridge_wire::Amount::new(
            0,
            posbridge_wire::Currency::EUR,
        ));
    TransactionResult {
        request_id: request.request_id,
        idempotency_key: request.idempotency_key,
        transaction_id: TransactionId(request.idempotency_key.0),
        terminal_id: capabilities().terminal_id,
        kind: request.command.kind(),
        outcome,
        amount,
        approved_minor: if outcome.is_approved() {
            amount.minor
        } else {
            0
        },
        tip: None,
        cashback: None,
        method: None,
        pan: None,
        card_scheme: None,
        auth_code: None,
        reference: None,
        time: Timestamp(1_764_000_000_000),
        offline: false,
        balance: None,
        receipts: Vec::new(),
        signature: None,
        emv: None,
    }
}

impl ScriptedTerminal {
    /// A terminal that approves every command and remembers keys (as a native terminal does).
    pub fn approving() -> Self {
        Self::new(true)
    }

    /// A terminal that approves what is not scripted otherwise; `remembers_keys` as
    /// [`Adapter::remembers_keys`] says (false: it knows only its last transaction, like ZVT).
    pub fn new(remembers_keys: bool) -> Self {
        Self {
            capabilities: capabilities(),
            remembers_keys,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues what the next commands do (after those queued before).
    pub fn script(&self, steps: impl IntoIterator<Item = Script>) {
        self.state().script.extend(steps);
    }

    /// The next `n` resolutions answer "cannot tell".
    pub fn undecided(&self, n: u32) {
        self.state().undecided = n;
    }

    /// Every charge it made, in order.
    pub fn charges(&self) -> Vec<IdempotencyKey> {
        self.state().charges.clone()
    }

    /// How many commands reached it.
    pub fn seen(&self) -> u64 {
        self.state().seen
    }

    /// Its result for `key`, if it finished one.
    pub fn result(&self, key: &IdempotencyKey) -> Option<TransactionResult> {
        self.state().done.get(key).cloned()
    }

    /// The terminal takes `request` (once per key, as a terminal that remembers keys does; a
    /// terminal that does not runs it again).
    fn take(&self, request: &TransactionRequest, outcome: Outcome) -> TransactionResult {
        let mut state = self.state();
        state.seen += 1;
        if self.remembers_keys
            && let Some(done) = state.done.get(&request.idempotency_key)
        {
            return done.clone();
        }
        let result = result_of(request, outcome);
        if outcome.is_approved() {
            state.charges.push(request.idempotency_key);
        }
        state.done.insert(request.idempotency_key, result.clone());
        state.last = Some(result.clone());
        result
    }
}

impl Adapter for ScriptedTerminal {
    type Error = ScriptError;

    fn capabilities(&self) -> &Capabilities {
        &self.capabilities
    }

    fn remembers_keys(&self) -> bool {
        self.remembers_keys
    }

    async fn send(
        &self,
        request: TransactionRequest,
        exchange: &Exchange<'_>,
        _deadline: Duration,
    ) -> Answer<ScriptError> {
        let step = self.state().script.pop_front().unwrap_or(Script::Approve);
        if step == Script::NotSent {
            return Answer::NotSent(ScriptError::Broken);
        }
        exchange.sent();
        match step {
            Script::Approve => Answer::Result(self.take(&request, Outcome::Approved)),
            Script::Decline => Answer::Result(self.take(
                &request,
                Outcome::Declined(DeclineReason::INSUFFICIENT_FUNDS),
            )),
            Script::Refuse => {
                self.state().seen += 1;
                Answer::Refused(Refusal::new(
                    ErrorCode::BUSY,
                    "scripted refusal".to_string(),
                ))
            }
            Script::LoseAnswer => {
                self.take(&request, Outcome::Approved);
                Answer::Lost {
                    reason: DoubtReason::ConnectionLost,
                    source: Some(ScriptError::Broken),
                }
            }
            Script::Garble => {
                self.take(&request, Outcome::Approved);
                Answer::Lost {
                    reason: DoubtReason::Unreadable,
                    source: Some(ScriptError::Garbled),
                }
            }
            Script::Hang => std::future::pending().await,
            Script::LoseCommand | Script::NotSent => Answer::Lost {
                reason: DoubtReason::ConnectionLost,
                source: Some(ScriptError::Broken),
            },
        }
    }

    async fn resolve(
        &self,
        key: IdempotencyKey,
        _entry: Option<&Entry>,
        _records: &Records<'_>,
        _deadline: Duration,
    ) -> Result<Resolution<ScriptError>, ScriptError> {
        let mut state = self.state();
        if state.undecided > 0 {
            state.undecided -= 1;
            return Ok(Resolution::Unknown(ScriptError::CannotTell));
        }
        let found = if self.remembers_keys {
            state.done.get(&key).cloned()
        } else {
            state.last.clone().filter(|r| r.idempotency_key == key)
        };
        Ok(match found {
            Some(r) => Resolution::Done(r),
            None => Resolution::NotDone,
        })
    }

    async fn cancel(&self) -> Result<(), ScriptError> {
        Ok(())
    }

    async fn last_transaction(
        &self,
        _records: &Records<'_>,
        _deadline: Duration,
    ) -> Result<Option<TransactionResult>, ScriptError> {
        Ok(self.state().last.clone())
    }

    async fn settle(
        &self,
        key: IdempotencyKey,
        _operator: Option<OperatorAuth>,
        _deadline: Duration,
    ) -> Result<SettlementResult, CallError<ScriptError>> {
        Ok(SettlementResult {
            request_id: RequestId::default(),
            idempotency_key: key,
            terminal_id: self.capabilities.terminal_id,
            batch_number: 1,
            status: Ok(()),
            opened: None,
            closed: Timestamp(1_764_000_000_000),
            // The totals of what it charged (a settlement counts each result once).
            totals: posbridge_wire::Totals::of(self.state().done.values()),
            receipt: None,
            signature: None,
        })
    }

    async fn receipt(
        &self,
        _target: TransactionRef,
        _copy: ReceiptCopy,
        _records: &Records<'_>,
        _deadline: Duration,
    ) -> Result<Receipt, CallError<ScriptError>> {
        Err(CallError::Refused(Refusal::new(
            ErrorCode::NOT_FOUND,
            "the scripted terminal prints no receipts".to_string(),
        )))
    }

    async fn close(self) {}
}
