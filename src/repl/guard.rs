//! The REPL survives a panic while it evaluates one input: the panic is caught at the input
//! boundary and reported as an internal error; the session, its variables and its simulated
//! clusters stay.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::error::Error;

thread_local! {
    /// Whether this thread is inside [`catch`] (its panics are reported, not printed).
    static CATCHING: Cell<bool> = const { Cell::new(false) };
    /// The message and place of the last panic caught on this thread.
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`; a panic inside it becomes `Err` with the panic's message and place. Panics on other
/// threads, or outside `catch`, are printed as before.
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let was = CATCHING.with(|c| c.replace(true));
    // Evaluation state that a panic interrupts stays usable: the scope's lock tolerates
    // poisoning, and the workspace is told to recover.
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.map_err(|payload| {
        CAUGHT
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| payload_text(payload.as_ref()))
    })
}

/// The internal error the user sees for a panic while evaluating `input`.
pub fn internal_error(input: &str, panic: &str) -> Error {
    let shown = match input.trim().lines().count() {
        0 | 1 => format!("`{}`", input.trim()),
        _ => format!("`{}` …", input.trim().lines().next().unwrap_or_default()),
    };
    Error::Other {
        message: format!(
            "internal error while evaluating {shown}: {panic}\n\
             The session goes on with its variables and clusters. This is a bug in meshshift: \
             please report it with the input above."
        ),
    }
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CATCHING.with(Cell::get) {
                let place = info
                    .location()
                    .map(|l| format!(" (at {}:{})", l.file(), l.line()))
                    .unwrap_or_default();
                let text = format!("{}{place}", payload_text(info.payload()));
                CAUGHT.with(|c| *c.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_the_next_call_works() {
        let caught = catch(|| {
            let v: Vec<u8> = Vec::new();
            v[usize::MAX / 2]
        })
        .unwrap_err();
        assert!(caught.contains("index out of bounds"), "{caught}");
        assert!(caught.contains("guard.rs"), "{caught}");
        assert_eq!(catch(|| 42), Ok(42));
        let message = internal_error("x.y()", &caught).message();
        assert!(
            message.starts_with("internal error while evaluating `x.y()`: index out of bounds"),
            "{message}"
        );
        assert!(message.contains("please report it"), "{message}");
    }
}
