//! When and how long to wait before trying a request again.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Bounded exponential backoff.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries of one request, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is cut to it, so a registry cannot
    /// stall a pull for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before try number `attempt + 1` (attempt counts from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        // Up to 25% jitter so parallel transfers do not retry in lockstep.
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        base + base.mul_f64(f64::from(nanos % 250) / 1000.0)
    }

    /// The wait a response asks for, if it asks: `Retry-After` in seconds
    /// or as an HTTP date, capped by `max_retry_after`.
    pub fn retry_after(&self, headers: &HeaderMap) -> Option<Duration> {
        let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
        let wait = match v.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => httpdate::parse_http_date(v)
                .ok()?
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        };
        Some(wait.min(self.max_retry_after))
    }
}

/// Statuses worth another try: throttling and server-side faults.
pub fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

/// Transport failures worth another try.
pub fn is_retryable_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a test should stop loudly at the first surprise
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let b1 = p.backoff(1);
        assert!(b1 >= Duration::from_millis(250) && b1 < Duration::from_millis(320));
        let b3 = p.backoff(3);
        assert!(b3 >= Duration::from_secs(1));
        assert!(p.backoff(30) <= Duration::from_secs(10));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let p = RetryPolicy::default();
        let mut h = HeaderMap::new();
        assert_eq!(p.retry_after(&h), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(p.retry_after(&h), Some(Duration::from_secs(3)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("99999"));
        assert_eq!(p.retry_after(&h), Some(Duration::from_secs(60)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(20));
        h.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let got = p.retry_after(&h).unwrap();
        assert!(got > Duration::from_secs(15) && got <= Duration::from_secs(20));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(p.retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(p.retry_after(&h), None);
    }

    #[test]
    fn which_statuses_retry() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(is_retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 416, 501] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(s).unwrap()),
                "{s}"
            );
        }
    }
}
