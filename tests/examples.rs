//! Every ```rhai example in the reference runs (or, marked `no_run`, compiles).

use std::sync::Arc;

use meshshift::engine::resolver::ResolveMode;
use meshshift::engine::{self, Resolver};
use meshshift::output::Output;
use meshshift::session::{Params, Session, Settings};

#[test]
fn reference_examples_run() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let reference = meshshift::doc::Reference::build();
    let mut failures = Vec::new();
    let mut ran = 0;
    for function in reference.functions() {
        for (index, (code, runnable)) in function.examples().into_iter().enumerate() {
            let session = Session::new(
                runtime.handle().clone(),
                Settings {
                    assume_yes: true,
                    ..Settings::default()
                },
                Params::isolated(Default::default()),
                Arc::new(Output::buffer()),
            );
            let engine = meshshift::host::build_engine(
                &session,
                Resolver::new(ResolveMode::Evaluate, session.source_map()),
            );
            let name = format!("<example {} #{}>", function.call_name, index + 1);
            let result = engine::compile_text(&engine, &session, &name, &code).and_then(|script| {
                if runnable {
                    engine::run_script(&engine, &session, &script).map(drop)
                } else {
                    Ok(())
                }
            });
            match result {
                Ok(()) => ran += 1,
                Err(error) => failures.push(format!(
                    "{name}: {}\n{code}",
                    error.render(&meshshift::output::Style::plain())
                )),
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} example(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(ran > 20, "only {ran} examples found");
}
