//! A raw HTTP/1.1 client over `std::net::TcpStream`, one request per connection.
//!
//! Deliberately tiny and literal: the bad-input tests need to send what real clients never
//! do (a `Content-Length` that lies, path segments that are not normalised, broken JSON), so
//! nothing here rewrites or validates what the test asked for.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// One HTTP request, built up then sent with [`Request::send`].
#[derive(Debug, Clone)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    content_length: Option<u64>,
    timeout: Duration,
}

/// A response read until the server closed the connection.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A request with an arbitrary method and target (path and query, sent verbatim).
    pub fn new(method: &str, target: &str) -> Self {
        Request {
            method: method.to_string(),
            target: target.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            content_length: None,
            timeout: Duration::from_secs(60),
        }
    }
    pub fn get(target: &str) -> Self {
        Self::new("GET", target)
    }
    pub fn head(target: &str) -> Self {
        Self::new("HEAD", target)
    }
    pub fn put(target: &str) -> Self {
        Self::new("PUT", target)
    }
    pub fn post(target: &str) -> Self {
        Self::new("POST", target)
    }
    pub fn patch(target: &str) -> Self {
        Self::new("PATCH", target)
    }
    pub fn delete(target: &str) -> Self {
        Self::new("DELETE", target)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sends `Content-Length: n` whatever the body's real length. When `n` is larger than the
    /// body, the write side is shut down after the body, so the server sees a short read.
    pub fn content_length(mut self, n: u64) -> Self {
        self.content_length = Some(n);
        self
    }

    pub fn basic_auth(self, user: &str, password: &str) -> Self {
        use std::fmt::Write as _;
        let raw = format!("{user}:{password}");
        let mut encoded = String::new();
        // A small base64 encoder keeps this crate free of one more dependency.
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for chunk in raw.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    let idx = ((n >> (18 - 6 * i)) & 63) as usize;
                    let _ = encoded.write_char(char::from(ALPHABET[idx]));
                } else {
                    encoded.push('=');
                }
            }
        }
        self.header("Authorization", &format!("Basic {encoded}"))
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request on a new connection to `addr` and reads the whole response.
    pub fn send(&self, addr: SocketAddr) -> anyhow::Result<Response> {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|e| anyhow::anyhow!("connecting to {addr}: {e}"))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;

        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n",
            self.method, self.target
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let declared = self.content_length.or(
            if self.body.is_empty() && matches!(self.method.as_str(), "GET" | "HEAD" | "DELETE") {
                None
            } else {
                Some(self.body.len() as u64)
            },
        );
        if let Some(n) = declared {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        head.push_str("\r\n");

        // A server may answer and close before reading the whole body (it is allowed to, on
        // an error): a failed write is not yet a failed request, the response decides.
        let write_result = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&self.body))
            .and_then(|()| stream.flush());
        if declared.is_some_and(|n| n > self.body.len() as u64) {
            let _ = stream.shutdown(Shutdown::Write);
        }

        let mut raw = Vec::new();
        let read_result = stream.read_to_end(&mut raw);
        if raw.is_empty() {
            if let Err(e) = write_result {
                anyhow::bail!(
                    "{} {}: writing the request failed: {e}",
                    self.method,
                    self.target
                );
            }
            if let Err(e) = read_result {
                anyhow::bail!(
                    "{} {}: reading the response failed: {e}",
                    self.method,
                    self.target
                );
            }
            anyhow::bail!(
                "{} {}: the server closed without answering",
                self.method,
                self.target
            );
        }
        parse_response(&raw, self.method == "HEAD")
            .map_err(|e| anyhow::anyhow!("{} {}: {e}", self.method, self.target))
    }
}

fn parse_response(raw: &[u8], is_head: bool) -> anyhow::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            anyhow::anyhow!(
                "response has no end of headers: {:?}",
                String::from_utf8_lossy(raw)
            )
        })?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let mut resp = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if is_head || status == 204 || status == 304 {
        return Ok(resp);
    }
    if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        resp.body = dechunk(rest)?;
    } else if let Some(len) = resp
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        resp.body = rest[..len.min(rest.len())].to_vec();
    } else {
        resp.body = rest.to_vec();
    }
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow::anyhow!("truncated chunked body"))?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let size = usize::from_str_radix(&size_text, 16)
            .map_err(|_| anyhow::anyhow!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            anyhow::bail!("truncated chunk");
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .map_err(|e| anyhow::anyhow!("response body is not JSON ({e}): {:?}", self.text()))
    }

    /// The `code`s of an OCI distribution error body (`{"errors":[{"code":…}]}`).
    pub fn error_codes(&self) -> Vec<String> {
        self.json()
            .ok()
            .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| e.get("code").and_then(|c| c.as_str()).map(str::to_string))
            .collect()
    }

    /// The `Location` header as a path and query (an absolute URL loses its scheme and host).
    pub fn location(&self) -> anyhow::Result<String> {
        let loc = self.header("location").ok_or_else(|| {
            anyhow::anyhow!("status {} response has no Location header", self.status)
        })?;
        Ok(match loc.split_once("://") {
            Some((_, rest)) => rest
                .find('/')
                .map(|i| rest[i..].to_string())
                .unwrap_or_else(|| "/".into()),
            None => loc.to_string(),
        })
    }
}

/// Appends `key=value` to a path that may already have a query.
pub fn with_query(target: &str, key: &str, value: &str) -> String {
    let sep = if target.contains('?') { '&' } else { '?' };
    format!("{target}{sep}{key}={value}")
}

/// The error codes the OCI distribution spec defines.
pub const SPEC_ERROR_CODES: &[&str] = &[
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_and_plain() -> anyhow::Result<()> {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(raw, false)?.body, b"abcde");
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nhi";
        let r = parse_response(raw, false)?;
        assert_eq!((r.status, r.body.as_slice()), (404, &b"hi"[..]));
        Ok(())
    }

    #[test]
    fn basic_auth_is_base64() {
        let r = Request::get("/").basic_auth("alice", "s3cret!");
        assert_eq!(r.headers[0].1, "Basic YWxpY2U6czNjcmV0IQ==");
    }

    #[test]
    fn location_strips_scheme_and_host() -> anyhow::Result<()> {
        let r = Response {
            status: 202,
            headers: vec![(
                "Location".into(),
                "http://127.0.0.1:5000/v2/a/blobs/uploads/x?s=1".into(),
            )],
            body: vec![],
        };
        assert_eq!(r.location()?, "/v2/a/blobs/uploads/x?s=1");
        assert_eq!(with_query("/a?s=1", "digest", "d"), "/a?s=1&digest=d");
        Ok(())
    }
}
