//! Unmodified `kubectl port-forward` to a gateway pod's Envoy admin port on the simulator:
//! kubectl v1.31+ tunnels SPDY in a WebSocket first and falls back to a direct SPDY/3.1
//! upgrade; both are exercised (the second with `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sim_env_support::{TestEnv, guide_source_setup};

const SOURCE: &str = "sim-source";
const GATEWAY_NAMESPACE: &str = "istio-system";

/// A VirtualService with weighted destinations on the guide's gateway.
const SPLIT: &str = "apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews-split}
spec:
  hosts: [reviews.example.com]
  gateways: [bookinfo-gateway]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 80
    - destination: {host: reviews, subset: v2}
      weight: 20
";

/// A running `kubectl port-forward`, killed when dropped; its stdout and stderr lines arrive
/// on channels.
struct PortForward {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    local_port: u16,
}

impl PortForward {
    /// Starts kubectl and waits for its `Forwarding from 127.0.0.1:<port>` line.
    fn start(env: &TestEnv, target: &str, remote: u16, websockets: bool) -> PortForward {
        let mut command = Command::new("kubectl");
        command
            .args(["--kubeconfig", &env.kubeconfig().to_string_lossy()])
            .args(["--context", SOURCE, "-n", GATEWAY_NAMESPACE, "-v=4"])
            .args(["port-forward", target, &format!(":{remote}")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !websockets {
            command.env("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false");
        }
        let mut child = command.spawn().expect("kubectl runs");
        let lines = |reader: Box<dyn Read + Send>| {
            let (send, receive) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    if send.send(line).is_err() {
                        break;
                    }
                }
            });
            receive
        };
        let stdout = lines(Box::new(child.stdout.take().expect("stdout")));
        let stderr = lines(Box::new(child.stderr.take().expect("stderr")));
        let mut forward = PortForward {
            child,
            stdout,
            stderr,
            local_port: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while forward.local_port == 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match forward.stdout.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("Forwarding from 127.0.0.1:") {
                        forward.local_port = rest
                            .split(' ')
                            .next()
                            .and_then(|p| p.parse().ok())
                            .unwrap_or_else(|| panic!("port in {line:?}"));
                    }
                }
                Err(_) => panic!(
                    "kubectl port-forward did not start:\n{}",
                    forward.stderr_text()
                ),
            }
        }
        forward
    }

    /// What kubectl wrote on stderr so far.
    fn stderr_text(&self) -> String {
        self.stderr.try_iter().collect::<Vec<_>>().join("\n")
    }

    /// `GET path` on the forwarded local port.
    fn get(&self, path: &str) -> (u16, String) {
        get(self.local_port, path)
    }

    /// The exit status within `timeout`, if kubectl ended.
    fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("kubectl status") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for PortForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on local `port`, one connection: status and body.
fn get(port: u16, path: &str) -> (u16, String) {
    {
        let mut connection = TcpStream::connect(("127.0.0.1", port)).expect("local port accepts");
        connection
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        write!(
            connection,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("request written");
        let mut response = String::new();
        connection
            .read_to_string(&mut response)
            .expect("response read");
        let (head, body) = response
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no HTTP response: {response:?}"));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status in {head:?}"));
        (status, body.to_string())
    }
}

/// The guide's bookinfo on the source plus a weighted VirtualService, and the name of the
/// ingress gateway pod.
fn weighted_source() -> (TestEnv, String) {
    let env = TestEnv::start();
    guide_source_setup(&|args| env.kubectl_ok(SOURCE, args));
    env.apply(SOURCE, "bookinfo", SPLIT);
    let pod = env.kubectl_ok(
        SOURCE,
        &[
            "get",
            "pods",
            "-n",
            GATEWAY_NAMESPACE,
            "-l",
            "istio=ingressgateway",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    );
    assert!(!pod.is_empty(), "an ingress gateway pod");
    (env, pod)
}

/// The weighted clusters of the route to `reviews.example.com` in a config dump.
fn reviews_weights(dump: &Value) -> Vec<(String, u64)> {
    let configs = dump["configs"].as_array().cloned().unwrap_or_default();
    configs
        .iter()
        .flat_map(|c| {
            c["dynamic_route_configs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|d| {
            d["route_config"]["virtual_hosts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|host| host["name"] == "reviews.example.com:8080")
        .flat_map(|host| host["routes"].as_array().cloned().unwrap_or_default())
        .flat_map(|route| {
            route["route"]["weighted_clusters"]["clusters"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["weight"].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

/// The dump read through kube-rs' WebSocket port forwarding, as the propagation gate reads it.
fn kube_rs_dump(env: &TestEnv, pod: &str) -> Value {
    let kubeconfig = env.kubeconfig();
    env.runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(&kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            kubeconfig,
            &kube::config::KubeConfigOptions {
                context: Some(SOURCE.into()),
                ..Default::default()
            },
        )
        .await
        .expect("kubeconfig usable");
        let client = kube::Client::try_from(config).expect("client");
        meshshift::cluster::gateway::config_dump(client, GATEWAY_NAMESPACE, pod)
            .await
            .expect("kube-rs reads the dump")
    })
}

fn expected_weights() -> Vec<(String, u64)> {
    vec![
        (
            "outbound|9080|v1|reviews.bookinfo.svc.cluster.local".to_string(),
            80,
        ),
        (
            "outbound|9080|v2|reviews.bookinfo.svc.cluster.local".to_string(),
            20,
        ),
    ]
}

/// Reads `/config_dump` through kubectl sequentially and on concurrent connections, compares
/// it with kube-rs' read, and returns the milliseconds of one read each way (median of 21).
fn config_dump_through_kubectl(websockets: bool) -> (f64, f64) {
    let (env, pod) = weighted_source();
    let forward = PortForward::start(&env, &format!("pod/{pod}"), 15000, websockets);
    // The new VirtualService reaches the pod after the push: wait for it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let dump = loop {
        let (status, body) = forward.get("/config_dump");
        assert_eq!(status, 200, "{body}");
        let dump: Value = serde_json::from_str(&body).expect("config_dump is JSON");
        if reviews_weights(&dump) == expected_weights() {
            break dump;
        }
        assert!(
            Instant::now() < deadline,
            "weights never appeared: {:?}",
            reviews_weights(&dump)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(
        dump["configs"][0]["@type"],
        "type.googleapis.com/envoy.admin.v3.RoutesConfigDump"
    );
    assert_eq!(
        dump,
        kube_rs_dump(&env, &pod),
        "kubectl and kube-rs read the same"
    );

    // Several connections at once: one SPDY stream pair each, on one connection to the API
    // server.
    let port = forward.local_port;
    let readers: Vec<_> = (0..4)
        .map(|_| {
            std::thread::spawn(move || {
                (0..3)
                    .map(|_| get(port, "/config_dump"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for reader in readers {
        for (status, body) in reader.join().expect("reader") {
            assert_eq!(status, 200);
            let read: Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(read, dump);
        }
    }
    let (status, body) = forward.get("/no-such-endpoint");
    assert_eq!((status, body.as_str()), (404, "invalid path\n"));

    let median = |mut times: Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let time = |read: &dyn Fn()| {
        let start = Instant::now();
        read();
        start.elapsed().as_secs_f64() * 1000.0
    };
    let kubectl_ms = median(
        (0..21)
            .map(|_| time(&|| assert_eq!(forward.get("/config_dump").0, 200)))
            .collect(),
    );
    let kube_rs_ms = median(
        (0..21)
            .map(|_| time(&|| assert!(kube_rs_dump(&env, &pod).is_object())))
            .collect(),
    );
    // kubectl -v=4 logs the tunnelling dialer's negotiation; the direct dialer logs nothing.
    let log = forward.stderr_text();
    let tunnelled = log.contains("tunneling_dialer.go")
        && log.contains("negotiated protocol: portforward.k8s.io");
    assert_eq!(tunnelled, websockets, "{log}");
    assert!(!log.contains("fallback"), "{log}");
    (kubectl_ms, kube_rs_ms)
}

#[test]
fn kubectl_port_forward_reads_the_gateways_routes_through_the_websocket_tunnel() {
    let (kubectl_ms, kube_rs_ms) = config_dump_through_kubectl(true);
    eprintln!(
        "config_dump: {kubectl_ms:.1} ms through kubectl port-forward (SPDY in WebSocket), \
         {kube_rs_ms:.1} ms through kube-rs (new WebSocket per read)"
    );
}

#[test]
fn kubectl_port_forward_reads_the_gateways_routes_over_direct_spdy() {
    let (kubectl_ms, kube_rs_ms) = config_dump_through_kubectl(false);
    eprintln!(
        "config_dump: {kubectl_ms:.1} ms through kubectl port-forward (SPDY/3.1), \
         {kube_rs_ms:.1} ms through kube-rs (new WebSocket per read)"
    );
}

#[test]
fn a_port_nothing_listens_on_ends_kubectl_with_the_kubelets_error_and_the_simulator_lives_on() {
    let (env, pod) = weighted_source();
    for websockets in [true, false] {
        let mut refused = PortForward::start(&env, &format!("pod/{pod}"), 9999, websockets);
        // kubectl connects to the pod only when a local connection arrives.
        let mut connection =
            TcpStream::connect(("127.0.0.1", refused.local_port)).expect("local port accepts");
        let _ = connection.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let status = refused
            .wait_exit(Duration::from_secs(20))
            .expect("kubectl ends after the error");
        assert!(!status.success());
        let log = refused.stderr_text();
        assert!(
            log.contains(&format!(
                "error forwarding port 9999 to pod {pod}, uid : failed to connect to localhost:9999 inside namespace of pod: connection refused"
            )),
            "{log}"
        );
        assert!(log.contains("lost connection to pod"), "{log}");
    }

    // Killed mid-connection, kubectl leaves the API server and the forwarding working.
    let mut killed = PortForward::start(&env, &format!("pod/{pod}"), 15000, true);
    let mut open = TcpStream::connect(("127.0.0.1", killed.local_port)).expect("connects");
    open.write_all(b"GET /config_dump HTTP/1.1\r\nHost: localhost\r\n")
        .expect("half a request");
    std::thread::sleep(Duration::from_millis(200));
    killed.child.kill().expect("kill");
    let _ = killed.child.wait();
    drop(open);
    let pods = env.kubectl_ok(SOURCE, &["get", "pods", "-n", GATEWAY_NAMESPACE]);
    assert!(pods.contains(&pod), "{pods}");
    for websockets in [true, false] {
        let again = PortForward::start(&env, &format!("pod/{pod}"), 15000, websockets);
        let (status, body) = again.get("/config_dump");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("RoutesConfigDump"), "{body}");
    }
    assert!(kube_rs_dump(&env, &pod)["configs"].is_array());
}
