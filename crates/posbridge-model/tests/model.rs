//! The model check CI runs: every reachable state within [`Config::ci`]'s bounds keeps the
//! promise; and without a durable key store and batch at the terminal it does not (the checker
//! finds the double charge, and the settlement that no longer matches the journal), which shows
//! the properties can fail.

use std::time::Instant;

use posbridge_model::{Checker, Config, Model, PaymentModel, shortest_counterexample, trace};

#[test]
fn every_reachable_state_keeps_the_promise() {
    let config = Config::from_env().unwrap();
    let start = Instant::now();
    let model = PaymentModel::new(config);
    let checker = model.clone().checker().spawn_bfs().join();
    let elapsed = start.elapsed();
    println!(
        "model check {:?}: {} states ({} unique), depth {}, in {elapsed:.1?}",
        config.bounds,
        checker.state_count(),
        checker.unique_state_count(),
        checker.max_depth()
    );
    if let Some((name, path)) = checker.discoveries().into_iter().next() {
        panic!("{name}:\n{}", trace(&model, &path));
    }
    assert!(
        checker.unique_state_count() > 1000,
        "the model explored little"
    );
}

#[test]
fn without_a_durable_key_store_and_batch_a_key_is_charged_twice_and_settlement_mismatches() {
    let mut config = Config::ci();
    config.durable_store = false;
    let model = PaymentModel::new(config);
    let path = shortest_counterexample(&model, "no key is charged twice")
        .expect("a terminal that forgets keys in a crash charges one twice");
    println!("counterexample:\n{}", trace(&model, &path));
    // Its batch is gone with it too: the settlement then no longer matches the journal.
    let path = shortest_counterexample(&model, "recovery over a working link resolves everything")
        .expect("a terminal that forgets its batch in a crash reports a false mismatch");
    let why = model.unresolved(path.last_state()).expect("a reason");
    assert!(why.contains("does not reconcile"), "{why}");
    println!("counterexample:\n{}", trace(&model, &path));
}
