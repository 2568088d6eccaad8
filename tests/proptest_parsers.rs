//! Property tests of every parser that reads outside input: the YAML loaders, kubectl
//! JSONPath templates, label and field selectors, the bookinfo extractor, durations, and the
//! simulator's request parsing (paths, selectors from query strings, JSON and merge patches).
//! Each must answer any input with a value or an error, never a panic or a hang, and the
//! well-formed inputs generated here must parse to what they say.
//!
//! The case budget is proptest's (256 per property; `PROPTEST_CASES=20000` for the longer
//! run recorded in RELIABILITY.md).

use proptest::prelude::*;
use serde_json::{Value, json};

use meshshift::manifest::{jsonpath, selector::Selector, yaml};
use meshshift::sim::patch::{apply_json_patch, apply_merge_patch};
use meshshift::sim::router::route;
use meshshift::sim::selector::{FieldSelector, LabelSelector};
use meshshift::traffic::extract;
use meshshift_support::duration::parse_duration;

/// Text biased towards the characters the parsers care about.
fn syntax_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(":".to_string()),
            Just("- ".to_string()),
            Just("&a ".to_string()),
            Just("*a".to_string()),
            Just("\n".to_string()),
            Just("  ".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just(".".to_string()),
            Just("?(@.".to_string()),
            Just("==".to_string()),
            Just("!=".to_string()),
            Just(",".to_string()),
            Just("in (".to_string()),
            Just(")".to_string()),
            Just("/".to_string()),
            Just("%".to_string()),
            "[a-z0-9]{1,6}",
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// JSON values of bounded depth, as Kubernetes objects hold them.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        "[a-zA-Z0-9 ._-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z][a-zA-Z0-9]{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn yaml_loaders_never_panic(text in syntax_text()) {
        let _ = meshshift_support::yaml::from_str(&text);
        let _ = yaml::parse_documents("fuzz.yaml", &text);
    }

    #[test]
    fn yaml_written_by_meshshift_reads_back_the_same(object in prop::collection::btree_map("[a-z][a-zA-Z0-9]{0,8}", json_value(), 1..5)) {
        let value = Value::Object(object.into_iter().collect());
        let text = yaml::to_yaml(&value);
        let documents = yaml::parse_documents("round-trip.yaml", &text).expect("own YAML parses");
        prop_assert_eq!(documents.len(), 1);
        prop_assert_eq!(&documents[0].value, &value);
    }

    #[test]
    fn jsonpath_templates_never_panic(template in syntax_text()) {
        let value = json!({"metadata": {"name": "x", "labels": {"a": "b"}},
                           "spec": {"ports": [{"name": "http", "port": 80}, {"name": "tls", "port": 443}]}});
        let _ = jsonpath::render(&template, &value);
        let _ = jsonpath::query(&template, &value);
    }

    #[test]
    fn jsonpath_field_paths_find_what_is_there(key in "[a-z][a-z0-9]{0,8}", text in "[a-zA-Z0-9]{0,12}") {
        let value = json!({"metadata": {key.clone(): text.clone()}});
        prop_assert_eq!(jsonpath::render(&format!("{{.metadata.{key}}}"), &value).expect("renders"), text);
    }

    #[test]
    fn selectors_never_panic(text in syntax_text()) {
        let _ = Selector::parse(&text);
        let _ = LabelSelector::parse(&text);
        let _ = FieldSelector::parse(&text, "", "Pod");
        let _ = FieldSelector::parse(&text, "apps", "Deployment");
    }

    #[test]
    fn equality_selectors_of_valid_labels_parse(pairs in prop::collection::btree_map("[a-z][a-z0-9.-]{0,10}[a-z0-9]", "[a-z0-9]{0,10}", 1..4)) {
        let text = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        prop_assert!(Selector::parse(&text).is_ok(), "{}", text);
        prop_assert!(LabelSelector::parse(&text).is_ok(), "{}", text);
    }

    #[test]
    fn the_bookinfo_extractor_never_panics(body in syntax_text(), tail in ".{0,200}") {
        let text = format!("<html><title>{body}</title><dl><dt>Reviewer</dt>{tail}</dl></html>");
        let _ = extract::bookinfo_pod(&text);
        let _ = extract::title(&text);
        let _ = extract::is_pod_name(&body);
    }

    #[test]
    fn durations_never_panic(text in ".{0,24}") {
        let _ = parse_duration(&text);
    }

    #[test]
    fn durations_with_units_parse_to_their_value(amount in 0u64..100_000, unit in prop::sample::select(vec![("ms", 1u64), ("s", 1000), ("m", 60_000), ("h", 3_600_000)])) {
        let text = format!("{amount}{}", unit.0);
        let millis = amount * unit.1;
        // Durations are bounded to a year (365 days).
        if millis <= 31_536_000_000 {
            let parsed = parse_duration(&text).expect("valid");
            let expected = std::time::Duration::from_millis(millis);
            let difference = parsed.abs_diff(expected);
            prop_assert!(difference < std::time::Duration::from_micros(1), "{} gave {:?}", text, parsed);
        } else {
            let error = parse_duration(&text).expect_err("out of range");
            prop_assert!(error.contains("out of range"), "{}", error);
        }
    }

    #[test]
    fn simulator_paths_never_panic(path in "(/[a-zA-Z0-9.%:_-]{0,12}){0,9}(\\?[a-z=&]{0,12})?") {
        let _ = route(&path);
    }

    #[test]
    fn simulator_patches_never_panic(body in prop::collection::vec(any::<u8>(), 0..200), original in json_value()) {
        let _ = apply_json_patch(&original, &body);
        let _ = apply_merge_patch(&original, &body);
    }

    #[test]
    fn json_patch_texts_never_panic(text in syntax_text(), original in json_value()) {
        let _ = apply_json_patch(&original, text.as_bytes());
        let _ = apply_merge_patch(&original, text.as_bytes());
    }

    #[test]
    fn a_merge_patch_of_an_object_without_nulls_onto_nothing_gives_the_object(object in prop::collection::btree_map("[a-z]{1,6}", "[a-z0-9]{0,6}", 0..6)) {
        let value = Value::Object(object.into_iter().map(|(k, v)| (k, Value::from(v))).collect());
        let patched = apply_merge_patch(&json!({}), value.to_string().as_bytes()).expect("valid patch");
        prop_assert_eq!(patched, value);
    }
}
