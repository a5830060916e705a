//! Switches that each break one safety rule on purpose (cargo feature `mutations`): the model
//! checker (`posbridge-model`) turns one on and must then find a counterexample, which shows
//! that its properties can fail and that they watch this rule. Without the feature there is no
//! way to turn one on, and every check of a switch is a constant `false`.

/// A rule broken on purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "mutations"), allow(unreachable_pub))]
pub enum Mutation {
    /// The engine records a result that answers another key under the key it asked about (a
    /// late answer taken for this one) instead of leaving the command in doubt.
    AcceptStaleResult,
    /// The engine journals a new command's intent only after the adapter sent it, so a crash
    /// while it is on its way leaves no trace of it in the journal.
    IntentAfterSend,
}

#[cfg(feature = "mutations")]
static ON: std::sync::Mutex<Option<Mutation>> = std::sync::Mutex::new(None);

/// Turns `mutation` on (`None`: all off) for the whole process.
#[cfg(feature = "mutations")]
pub fn set(mutation: Option<Mutation>) {
    *ON.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = mutation;
}

/// Whether `mutation` is on.
#[cfg(feature = "mutations")]
pub(crate) fn on(mutation: Mutation) -> bool {
    *ON.lock().unwrap_or_else(std::sync::PoisonError::into_inner) == Some(mutation)
}

/// Whether `mutation` is on: never, without the feature.
#[cfg(not(feature = "mutations"))]
#[inline(always)]
pub(crate) fn on(_mutation: Mutation) -> bool {
    false
}
