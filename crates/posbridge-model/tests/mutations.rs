//! Each mutation (a safety rule broken on purpose in the real code) yields a counterexample.
//! One test, because the switch is the process's.

use posbridge_model::{Config, PaymentModel, shortest_counterexample, trace};

fn counterexample(property: &'static str) -> String {
    let model = PaymentModel::new(Config::ci());
    let path = shortest_counterexample(&model, property)
        .unwrap_or_else(|| panic!("no counterexample to {property:?}"));
    trace(&model, &path)
}

#[test]
fn each_mutation_yields_a_counterexample() {
    use posbridge_api::mutations::{self as api, Mutation as A};
    use posbridge_session::mutations::{self as session, Mutation as S};
    type Switch = Box<dyn Fn(bool)>;
    let cases: [(&str, Switch, &'static str); 4] = [
        (
            "the terminal treats a running key as new",
            Box::new(|on| session::set(on.then_some(S::RunningKeyAsNew))),
            "no key is charged twice",
        ),
        (
            "the key store's claim is not atomic",
            Box::new(|on| session::set(on.then_some(S::ClaimNotAtomic))),
            "no key is charged twice",
        ),
        (
            "the engine accepts a stale result",
            Box::new(|on| api::set(on.then_some(A::AcceptStaleResult))),
            "no approval in the journal without a charge",
        ),
        (
            "the engine journals the intent after sending",
            Box::new(|on| api::set(on.then_some(A::IntentAfterSend))),
            "recovery over a working link resolves everything",
        ),
    ];
    for (what, switch, property) in cases {
        switch(true);
        let found = std::panic::catch_unwind(|| counterexample(property));
        switch(false);
        match found {
            Ok(trace) => println!("{what}: {property:?} fails:\n{trace}"),
            Err(e) => std::panic::resume_unwind(e),
        }
    }
}
