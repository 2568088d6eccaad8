//! Manifest functions through runbooks.

use crate::test::Test;

const APP: &str = "apiVersion: v1
kind: Namespace
metadata:
  name: bookinfo
  labels:
    istio-injection: enabled
---
apiVersion: v1
kind: Service
metadata:
  name: productpage
  namespace: bookinfo
  uid: 0e5b
  resourceVersion: \"1234\"
  labels: {app: productpage}
spec:
  clusterIP: 10.0.12.7
  ports: [{name: http, port: 9080}]
status: {loadBalancer: {}}
---
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: reviews-v1, namespace: bookinfo, labels: {app: reviews, version: v1}}
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: reviews-v2, namespace: bookinfo, labels: {app: reviews, version: v2}}
";

#[test]
fn load_select_strip_label_and_write_back() {
    Test::new()
        .write("app.yaml", APP)
        .runbook(
            r#"
            let objects = load("app.yaml");
            info(objects.len());
            let ns = select(objects, #{kind: "namespace"})[0];
            label(ns, "istio-injection", ());
            label(ns, "istio.io/rev", "asm-1-25");
            print(to_yaml(ns));
            let svc = strip(select(objects, #{kind: "Service"})[0]);
            print(to_yaml(svc));
            let reviews = select(objects, #{name: "reviews-*", labels: "version in (v2)"});
            info(reviews.map(|d| d.metadata.name));
            "#,
        )
        .stdout(
            "
            4
            apiVersion: v1
            kind: Namespace
            metadata:
              labels:
                istio.io/rev: asm-1-25
              name: bookinfo

            apiVersion: v1
            kind: Service
            metadata:
              labels:
                app: productpage
              name: productpage
              namespace: bookinfo
            spec:
              ports:
              - name: http
                port: 9080

            [\"reviews-v2\"]
            ",
        )
        .run();
}

#[test]
fn paths_templates_and_jsonpath() {
    Test::new()
        .runbook(
            r#"
            let svc = parse_yaml(template("kind: Service\nspec:\n  ports:\n  - {name: http2, port: ${PORT}}\nstatus:\n  loadBalancer:\n    ingress: [{ip: ${IP}}]\n", #{PORT: 80, IP: "20.1.2.3"}));
            info(get_path(svc, "spec.ports[0].port"));
            info(get_path(svc, "spec.ports[3].port"));
            set_path(svc, "metadata.labels[\"istio.io/rev\"]", "asm-1-25");
            info(svc.metadata.labels["istio.io/rev"]);
            info(jsonpath(svc, "{.status.loadBalancer.ingress[0].ip}:{.spec.ports[?(@.name==\"http2\")].port}"));
            "#,
        )
        .stdout("80\n\nasm-1-25\n20.1.2.3:80\n")
        .run();
}

#[test]
fn template_errors_name_the_variable_and_position() {
    Test::new()
        .runbook(r#"template("host: ${HOST}\nip: ${IP}", #{HOST: "a"});"#)
        .status(1)
        .stderr_contains(&[
            "error: template: variable `IP` is not set",
            " --> <template>:2:5",
            "2 | ip: ${IP}",
        ])
        .run();
}

#[test]
fn diff_masks_secrets() {
    Test::new()
        .runbook(
            r#"
            let a = #{apiVersion: "v1", kind: "Secret", metadata: #{name: "tls"}, data: #{key: "b2xk", crt: "c2FtZQ=="}};
            let b = #{apiVersion: "v1", kind: "Secret", metadata: #{name: "tls"}, data: #{key: "bmV3", crt: "c2FtZQ=="}};
            print(diff(a, b));
            print(redact(a).data);
            "#,
        )
        .stdout(
            "
            --- before
            +++ after
            @@ -1,7 +1,7 @@
             apiVersion: v1
             data:
               crt: '***'
            -  key: '*** (before)'
            +  key: '*** (after)'
             kind: Secret
             metadata:
               name: tls

            #{\"crt\": \"***\", \"key\": \"***\"}
            ",
        )
        .run();
}

#[test]
fn manifest_errors_inside_functions_show_the_trace() {
    Test::new()
        .write("bad.yaml", "kind: Pod\n")
        .runbook(
            r#"
            fn read(file) { load(file) }
            read("bad.yaml");
            "#,
        )
        .status(1)
        .stderr(
            r#"
            error: invalid object in `bad.yaml` (document 1): the object has no `apiVersion`
             --> bad.yaml:1:1
              |
            1 | kind: Pod
              | ^^^^
              = called from runbook.rhai:1:17
             --> runbook.rhai:1:17
              |
            1 | fn read(file) { load(file) }
              |                 ^^^^
              = in `read`, called from runbook.rhai:2:1
            "#,
        )
        .run();
}
