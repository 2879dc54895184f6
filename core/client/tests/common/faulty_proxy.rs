//! A loopback TCP proxy in front of a real registry that breaks chosen
//! requests the way networks and overloaded registries do: a 503/429 before
//! forwarding, or a connection cut in the middle of a request body.
//!
//! Each client connection carries one request: the proxy adds
//! `Connection: close` so the registry closes after answering, which lets
//! the proxy see every request line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test helpers fail loudly

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What to do with a request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status (with `Retry-After: 0`) without forwarding.
    Status(u16),
    /// Forward the head and this many body bytes, then cut both sides.
    CutAfter(usize),
}

/// A rule: the next `times` requests whose line starts with `prefix`
/// (e.g. `"PATCH "`) get `fault`.
struct Rule {
    prefix: String,
    fault: Fault,
    times: usize,
}

#[derive(Clone, Default)]
pub struct Faults {
    rules: Arc<Mutex<Vec<Rule>>>,
    /// Request lines seen, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Faults {
    pub fn add(&self, prefix: &str, fault: Fault, times: usize) {
        self.rules.lock().unwrap().push(Rule {
            prefix: prefix.to_string(),
            fault,
            times,
        });
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    fn take(&self, line: &str) -> Option<Fault> {
        let mut rules = self.rules.lock().unwrap();
        let rule = rules
            .iter_mut()
            .find(|r| r.times > 0 && line.starts_with(&r.prefix))?;
        rule.times -= 1;
        Some(rule.fault.clone())
    }
}

/// Start the proxy; returns its `127.0.0.1:port` and the fault switchboard.
pub async fn start(upstream: String) -> (String, Faults) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let faults = Faults::default();
    let f = faults.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let (f, up) = (f.clone(), upstream.clone());
            tokio::spawn(async move {
                let _ = handle(conn, &up, &f).await;
            });
        }
    });
    (addr, faults)
}

async fn handle(mut client: TcpStream, upstream: &str, faults: &Faults) -> std::io::Result<()> {
    // Read the request head.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).await? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let line = text.lines().next().unwrap_or("").to_string();
    faults.seen.lock().unwrap().push(line.clone());
    let fault = faults.take(&line);
    if let Some(Fault::Status(code)) = fault {
        let reason = if code == 429 {
            "Too Many Requests"
        } else {
            "Service Unavailable"
        };
        let resp = format!(
            "HTTP/1.1 {code} {reason}\r\nRetry-After: 0\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        client.write_all(resp.as_bytes()).await?;
        return client.shutdown().await;
    }
    let mut new_head = String::new();
    for l in text.split("\r\n").filter(|l| !l.is_empty()) {
        if !l.to_ascii_lowercase().starts_with("connection:") {
            new_head.push_str(l);
            new_head.push_str("\r\n");
        }
    }
    new_head.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream).await?;
    up.write_all(new_head.as_bytes()).await?;
    if let Some(Fault::CutAfter(n)) = fault {
        let mut body = vec![0u8; n];
        client.read_exact(&mut body).await?;
        up.write_all(&body).await?;
        up.flush().await?;
        // Give the registry time to take the partial body in, then drop
        // both sides as a broken network would.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        return Ok(());
    }
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = up.split();
    let to_up = async {
        let _ = tokio::io::copy(&mut cr, &mut uw).await;
    };
    let to_client = async {
        let _ = tokio::io::copy(&mut ur, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    // The answer ending (registry closed) ends the exchange.
    tokio::select! {
        _ = async { tokio::join!(to_up, std::future::pending::<()>()) } => {}
        _ = to_client => {}
    }
    Ok(())
}
