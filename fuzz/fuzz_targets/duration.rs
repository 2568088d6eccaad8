//! Durations as people write them (`30s`, `2m30s`): any text gives a duration or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = meshshift_support::duration::parse_duration(text);
    }
});
