//! A small real HTTP server for traffic tests: bookinfo pages in both markups, a
//! deterministic 90/10 pod rotation, slow answers, 503s, dropped connections, and an echo of the
//! Host header.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// The current productpage markup (bookinfo 1.20.1+): the pod name on the line after the marker,
/// twice (one per review).
pub fn current_markup(pod: &str) -> String {
    let review = format!(
        "        <section>\n          <div class=\"mt-0.5 text-gray-600 font-mono\">\n            Reviews served by: \n                  {pod}\n          </div>\n        </section>\n"
    );
    format!(
        "<!DOCTYPE html>\n<html>\n<head>\n<title>Simple Bookstore App</title>\n</head>\n<body>\n<h1>The Comedy of Errors</h1>\n<h4 class=\"x\">Book Reviews</h4>\n{review}{review}</body>\n</html>\n"
    )
}

/// The older markup (bookinfo 1.16.4 to 1.19.1): `<dt>` and the pod name in `<u>` on the next line.
pub fn old_markup(pod: &str) -> String {
    format!(
        "<html><head><title>Simple Bookstore App</title></head>\n<body>\n<dl>\n<dt>Reviews served by:</dt>\n<u>{pod}</u>\n</dl>\n</body></html>\n"
    )
}

/// A running server; it stops with the test process.
pub struct Server {
    pub address: SocketAddr,
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// Starts the server on an ephemeral loopback port.
pub fn start() -> Server {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            sender.send(listener.local_addr().unwrap()).unwrap();
            let counter = Arc::new(AtomicU64::new(0));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service =
                        hyper::service::service_fn(move |request| answer(request, counter.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Server {
        address: receiver.recv().unwrap(),
    }
}

async fn answer(
    request: Request<Incoming>,
    counter: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let ok = |body: String| Ok(Response::new(Full::new(Bytes::from(body))));
    // Nine of every ten requests go to v1: an exact 90/10 split.
    let pod = || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        if n % 10 == 9 {
            "reviews-v2-7d9f8c6b4-q2xkz"
        } else {
            "reviews-v1-5c7d8f9b6-x2kq9"
        }
    };
    match request.uri().path() {
        "/productpage" => ok(current_markup(pod())),
        "/old" => ok(old_markup(pod())),
        "/fifty" => {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            ok(current_markup(if n.is_multiple_of(2) {
                "reviews-v1-5c7d8f9b6-x2kq9"
            } else {
                "reviews-v2-7d9f8c6b4-q2xkz"
            }))
        }
        "/host" => ok(request
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string()),
        "/slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            ok("slow".into())
        }
        "/unavailable" => Ok(Response::builder()
            .status(503)
            .body(Full::new(Bytes::from("no healthy upstream")))
            .unwrap()),
        _ => Ok(Response::builder()
            .status(404)
            .body(Full::new(Bytes::from("not found")))
            .unwrap()),
    }
}
