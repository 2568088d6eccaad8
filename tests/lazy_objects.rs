//! `load` keeps objects compact until a script reads them (`Objects`): through the binary,
//! every way a script reads, writes, iterates, combines and applies the list gives what the
//! array of maps `parse_manifests` builds from the same text gives.

use crate::test::Test;

const APP: &str = "apiVersion: v1
kind: ConfigMap
metadata: {name: settings, labels: {app: productpage}}
data: {mode: canary, ratio: '0.5'}
---
apiVersion: v1
kind: Service
metadata: {name: productpage, labels: {app: productpage}}
spec:
  ports: [{name: http, port: 9080}]
  selector: {app: productpage}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: reviews-v1, labels: {app: reviews, version: v1}}
spec:
  replicas: 1
  selector: {matchLabels: {app: reviews}}
  template:
    metadata: {labels: {app: reviews}}
    spec:
      containers: [{name: reviews, image: docker.io/istio/examples-bookinfo-reviews-v1:1.20.2}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Secret
metadata: {name: db}
stringData: {password: aHVudGVyMg-stored}
";

/// The same steps on the loaded list and on the eager array, then both applied to the two
/// simulated clusters and exported back.
const SCRIPT: &str = r#"
fn same(a, b) { to_json(a) == to_json(b) }
let lazy = load("app.yaml");
let eager = parse_manifests(text);
print(`${type_of(lazy)} ${type_of(eager)} ${lazy.len()} ${same(lazy, eager)}`);
print(same(lazy[1], eager[1]) && same(lazy[-1], eager[-1]) && lazy[1].spec.ports[0].port == 9080);
print(`${lazy}`.contains("aHVudGVyMg-stored"));
print(lazy[4].stringData.password);

// Writes through an index or a field reach the list; reads are copies.
lazy[1].metadata.name = "renamed";
eager[1].metadata.name = "renamed";
lazy[2].metadata.labels.version = "v2";
eager[2].metadata.labels.version = "v2";
lazy[0] = #{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "replaced"}, data: #{mode: "b"}};
eager[0] = #{apiVersion: "v1", kind: "ConfigMap", metadata: #{name: "replaced"}, data: #{mode: "b"}};
let copy = lazy[1];
copy.metadata.name = "not-written";
print(`${lazy[1].metadata.name} ${lazy[2].metadata.labels.version} ${lazy[0].metadata.name} ${same(lazy, eager)}`);

// Iterating, filtering, mapping, combining and sorting see the same objects in the same order.
let names = [];
for (o, i) in lazy { names.push(`${i}:${o.metadata.name}`); }
print(names);
print(lazy.filter(|o| o.kind != "Secret").map(|o| o.kind) == eager.filter(|o| o.kind != "Secret").map(|o| o.kind));
let all = [];
all += lazy;
print(`${all.len()} ${same(all, eager)} ${same(lazy + eager, eager + eager)} ${same([1] + lazy, [1] + eager)}`);
lazy.retain(|o| o.kind != "Secret");
eager.retain(|o| o.kind != "Secret");
lazy.sort(|a, b| if a.kind < b.kind { -1 } else if a.kind > b.kind { 1 } else { 0 });
eager.sort(|a, b| if a.kind < b.kind { -1 } else if a.kind > b.kind { 1 } else { 0 });
set_namespace(lazy, "shop");
set_namespace(eager, "shop");
label(lazy, "team", "mesh");
label(eager, "team", "mesh");
print(`${lazy.map(|o| o.kind)} ${same(lazy, eager)} ${same(select(lazy, #{kind: "Deployment"}), select(eager, #{kind: "Deployment"}))}`);

// Applied to a cluster, the list writes what the array writes.
let source = cluster("sim-source");
let target = cluster("sim-target");
let written = source.apply(lazy, #{quiet: true});
print(same(written, target.apply(eager, #{quiet: true})));
print(written.map(|w| `${w.kind}/${w.name} ${w.action}`));
let exported = source.export_objects(#{namespaces: ["shop"], kinds: ["ConfigMap", "Service", "Deployment"]});
print(same(exported, target.export_objects(#{namespaces: ["shop"], kinds: ["ConfigMap", "Service", "Deployment"]})));
print(exported.filter(|o| o.metadata.name != "kube-root-ca.crt").map(|o| `${o.kind}/${o.metadata.name} ${o.metadata.labels.team}`));
"#;

#[test]
fn a_loaded_list_reads_writes_iterates_and_applies_as_the_eager_array_does() {
    let outcome = Test::new()
        .write("app.yaml", APP)
        .write("runbook.rhai", format!("let text = `{APP}`;\n{SCRIPT}"))
        .args(&["run", "runbook.rhai", "--sim", "--yes"])
        .run();
    // The first line says where the simulated clusters started.
    let printed: Vec<&str> = outcome.stdout.lines().skip(1).collect();
    assert_eq!(
        printed,
        [
            "Objects array 5 true",
            "true",
            "false",
            "***",
            "renamed v2 replaced true",
            r#"["0:replaced", "1:renamed", "2:reviews-v1", "3:shop", "4:db"]"#,
            "true",
            "5 true true true",
            r#"["ConfigMap", "Deployment", "Namespace", "Service"] true true"#,
            "true",
            r#"["Namespace/shop created", "ConfigMap/replaced created", "Deployment/reviews-v1 created", "Service/renamed created"]"#,
            "true",
            r#"["Namespace/shop mesh", "ConfigMap/replaced mesh", "Service/renamed mesh", "Deployment/reviews-v1 mesh"]"#,
        ],
        "{}",
        outcome.stdout
    );
}

#[test]
fn the_repl_shows_a_loaded_list_as_a_table_and_an_item_as_yaml() {
    Test::new()
        .write("app.yaml", APP)
        .args(&["repl"])
        .stdin("let objects = load(\"app.yaml\");\nobjects\nobjects[4]\ntype_of(objects)\n")
        .stdout(
            "
            KIND        NAMESPACE  NAME         STATUS
            ConfigMap              settings
            Service                productpage
            Deployment             reviews-v1   0/1 ready
            Namespace              shop
            Secret                 db
            apiVersion: v1
            kind: Secret
            metadata:
              name: db
            stringData:
              password: '***'
            Objects
            ",
        )
        .run();
}
