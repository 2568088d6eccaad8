//! The stdlib: `stdlib/*.rhai`, compiled into the binary and served to `import "name"` before
//! the file system is looked at.

/// Every stdlib module as (import name, source text).
pub const MODULES: &[(&str, &str)] = &[
    ("aks", include_str!("../stdlib/aks.rhai")),
    ("assert", include_str!("../stdlib/assert.rhai")),
    ("istio", include_str!("../stdlib/istio.rhai")),
    ("traffic", include_str!("../stdlib/traffic.rhai")),
];

/// The source of a stdlib module.
pub fn get(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(module, _)| *module == name)
        .map(|(_, text)| *text)
}

/// The file name under which errors show a stdlib module.
pub fn display_name(name: &str) -> String {
    format!("stdlib/{name}.rhai")
}

/// Stdlib import names.
pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(name, _)| *name)
}
