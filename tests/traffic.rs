//! Traffic primitives against a real local HTTP server, through runbooks.

use crate::http_server;
use crate::test::Test;

fn with_server(source: &str) -> Test {
    let server = http_server::start();
    Test::new()
        .runbook(source)
        .args(&["--set", &format!("BASE={}", server.url(""))])
}

#[test]
fn http_get_reads_status_title_and_sends_the_host_header() {
    with_server(
        r#"
        let base = param("BASE");
        let page = http_get(base + "/productpage");
        print(`${page.status} ${page.title}`);
        print(http_get(base + "/host", #{host: "bookinfo.example.com"}).body);
        let missing = http_get(base + "/nope");
        print(missing.status);
        "#,
    )
    .stdout("200 Simple Bookstore App\nbookinfo.example.com\n404\n")
    .run();
}

#[test]
fn failures_are_values_with_a_kind() {
    with_server(
        r#"
        let base = param("BASE");
        let slow = http_get(base + "/slow", #{timeout: "100ms"});
        print(`${slow.status} ${slow.error_kind}`);
        let refused = http_get("http://127.0.0.1:9/productpage", #{timeout: "2s"});
        print(`${refused.status} ${refused.error_kind}`);
        let s = sample(base + "/unavailable", #{count: 20, concurrency: 4});
        print(s.errors);
        print(s.error_rate);
        "#,
    )
    .stdout("0 timeout\n0 connect-refused\n#{\"http-503\": 20}\n1.0\n")
    .run();
}

#[test]
fn samples_extract_pods_from_both_bookinfo_markups() {
    with_server(
        r#"
        let base = param("BASE");
        for path in ["/productpage", "/old"] {
            let s = sample(base + path, #{count: 200, concurrency: 8, extract: "bookinfo"});
            print(`${s.total} ${s.ok} ${s.unextracted} ${s.counts}`);
        }
        let custom = sample(base + "/productpage", #{count: 10, extract: "reviews-(v[0-9])"});
        print(custom.counts);
        "#,
    )
    .stdout(
        "
        200 200 0 #{\"reviews-v1-5c7d8f9b6-x2kq9\": 180, \"reviews-v2-7d9f8c6b4-q2xkz\": 20}
        200 200 0 #{\"reviews-v1-5c7d8f9b6-x2kq9\": 180, \"reviews-v2-7d9f8c6b4-q2xkz\": 20}
        #{\"v1\": 9, \"v2\": 1}
        ",
    )
    .run();
}

#[test]
fn split_check_passes_fails_and_is_inconclusive() {
    with_server(
        r#"
        let base = param("BASE");
        fn routes(s) { #{old: s.counts["reviews-v1-5c7d8f9b6-x2kq9"] ?? 0, fresh: s.counts["reviews-v2-7d9f8c6b4-q2xkz"] ?? 0} }
        let weights = #{old: 90, fresh: 10};
        let right = split_check(routes(sample(base + "/productpage", #{count: 1000, extract: "bookinfo"})), weights, #{});
        print(`${right.verdict} ${right.method}`);
        let wrong = split_check(routes(sample(base + "/fifty", #{count: 200, extract: "bookinfo"})), weights, #{});
        print(`${wrong.verdict} ${wrong.p_value < 1e-10}`);
        let small = split_check(routes(sample(base + "/productpage", #{count: 10, extract: "bookinfo"})), weights, #{});
        print(`${small.verdict} needs ${small.required_sample > 100}`);
        let with_unknown = split_check(#{old: 900, fresh: 100, unknown: 3}, weights, #{confidence: 0.99});
        print(with_unknown.ignored);
        "#,
    )
    .stdout("pass exact binomial\nfail true\ninconclusive needs true\n#{\"unknown\": 3}\n")
    .run();
}

#[test]
fn bad_options_are_named() {
    Test::new()
        .runbook(r#"sample("http://127.0.0.1:9/", #{cuont: 5});"#)
        .status(1)
        .stderr_contains(&["error: sample: unknown option `cuont` (did you mean `count`?)"])
        .run();
    Test::new()
        .runbook(r#"split_check(#{a: 1}, #{a: -1, b: 2}, #{});"#)
        .status(1)
        .stderr_contains(&["error: split_check: ", "`a`"])
        .run();
    Test::new()
        .runbook(r#"service_entry("target", "v2.example.com", "not-an-ip", 80);"#)
        .status(1)
        .stderr_contains(&["error: service_entry: ", "not-an-ip"])
        .run();
    // `--set` values stay text unless `param` has a numeric default.
    Test::new()
        .runbook(r#"sample("http://127.0.0.1:9/", #{count: param("COUNT")});"#)
        .args(&["--set", "COUNT=50"])
        .status(1)
        .stderr_contains(&[
            "error: sample: `count` must be an integer, got the string \"50\"",
            "param(\"COUNT\", 200)",
        ])
        .run();
}
