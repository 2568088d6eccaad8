//! Address mappings as curl's `--connect-to` and `MESHSHIFT_CONNECT_TO` write them.

use std::collections::BTreeMap;

/// `host:port=host2:port2,…` as `host:port` -> `host2:port2` (entries without `=`, or with an
/// empty side, are left out).
pub fn parse(spec: &str) -> BTreeMap<String, String> {
    spec.split(',')
        .filter_map(|entry| entry.split_once('='))
        .map(|(from, to)| (from.trim().to_string(), to.trim().to_string()))
        .filter(|(from, to)| !from.is_empty() && !to.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_read_and_malformed_entries_left_out() {
        let map = parse("10.0.0.1:80=127.0.0.1:8080, bad, =x:1, a:80 = b:1");
        assert_eq!(map.len(), 2);
        assert_eq!(map["a:80"], "b:1");
    }
}
