//! The bounded YAML reader meshshift and the simulator share: any bytes give a value or an
//! error, within the alias expansion bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = meshshift_support::yaml::from_slice(data);
});
