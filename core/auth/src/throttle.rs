//! A limit on failed password checks, so that bcrypt's cost is paid by the
//! guesser and not by the daemon, and a password cannot be found by trying.
//!
//! Failures are counted per client address (an IPv6 client by its /64, since
//! one host is given a whole /64), or per user name when the caller knows no
//! address. After `max_failures` failed checks, each within `window` of the
//! one before, the client is locked out for `window`: every request with a
//! password is refused with 429 and `Retry-After`, without running bcrypt,
//! whether the password is right or not (otherwise a lockout would only slow
//! the guesses down to the speed of a right answer). The counter starts
//! again after the lockout, and a whole window without a failure forgets the
//! earlier ones, so a guesser gets at most `max_failures` tries per window.
//! Successes do not reset it: a guesser with one account of its own must not
//! be able to clear it.
//!
//! A check takes its place in the count when it is admitted, before the
//! password is verified ([`Attempt`]), and gives it back only if the
//! password was right: otherwise many guesses sent at once would all be
//! admitted before the first of them failed.
//!
//! Behind a reverse proxy every client has the proxy's address, and one
//! guesser locks everybody out: berth does not trust `X-Forwarded-For`,
//! which any client can write.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failed checks allowed within [`DEFAULT_WINDOW`] before a lockout.
pub const DEFAULT_MAX_FAILURES: u32 = 10;
/// The window failures are counted in, and the length of a lockout.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(60);

/// Clients tracked at most; beyond it, those with nothing left to remember
/// are forgotten, and if that is not enough the oldest half goes.
const MAX_TRACKED: usize = 100_000;

/// What `Retry-After` says to a client whose checks under way already fill
/// its remaining tries: they end within a bcrypt's time.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// `d` in whole seconds, rounded up, at least 1: what `Retry-After` says.
pub(crate) fn whole_secs(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}

/// Who failures are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ThrottleKey {
    Addr(IpAddr),
    User(String),
}

impl ThrottleKey {
    /// The client's address when known, else the user name tried.
    pub(crate) fn new(client: Option<IpAddr>, user: &str) -> ThrottleKey {
        match client {
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => ThrottleKey::Addr(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    ThrottleKey::Addr(IpAddr::V6(bits.into()))
                }
            },
            Some(v4) => ThrottleKey::Addr(v4),
            None => ThrottleKey::User(user.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    /// The last failure counted.
    last: Instant,
    locked_until: Option<Instant>,
    /// Checks admitted and not yet settled.
    pending: u32,
}

/// The failure counters.
pub(crate) struct LoginThrottle {
    max_failures: u32,
    window: Duration,
    records: Mutex<HashMap<ThrottleKey, Record>>,
}

impl LoginThrottle {
    /// `max_failures` of 0 turns the limit off.
    pub(crate) fn new(max_failures: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            max_failures,
            window,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn records(&self) -> std::sync::MutexGuard<'_, HashMap<ThrottleKey, Record>> {
        // Counters hold no invariant a panicking holder could break.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A check for `key` may go ahead: its place in the count is taken
    /// until the [`Attempt`] says how it went. `Err(time to wait)` while
    /// `key` is locked out, or while the checks under way for it would use
    /// up its remaining tries.
    pub(crate) fn admit(&self, key: &ThrottleKey) -> Result<Attempt<'_>, Duration> {
        self.admit_at(key, Instant::now())
    }

    /// `Err(time to wait)` while `key` is locked out; takes no place. For
    /// answers that need no check of a password (one verified moments ago
    /// and cached), which a locked-out client must not get either.
    pub(crate) fn locked(&self, key: &ThrottleKey) -> Result<(), Duration> {
        self.locked_at(key, Instant::now())
    }

    fn locked_at(&self, key: &ThrottleKey, now: Instant) -> Result<(), Duration> {
        if self.max_failures == 0 {
            return Ok(());
        }
        match self.records().get(key).and_then(|r| r.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    fn admit_at(&self, key: &ThrottleKey, now: Instant) -> Result<Attempt<'_>, Duration> {
        if self.max_failures == 0 {
            return Ok(Attempt {
                throttle: self,
                key: None,
            });
        }
        let mut records = self.records();
        let r = self.record(&mut records, key, now);
        match r.locked_until {
            Some(until) if until > now => return Err(until - now),
            Some(_) => {
                // The lockout is over: start counting again.
                r.failures = 0;
                r.locked_until = None;
            }
            None if now.duration_since(r.last) >= self.window => r.failures = 0,
            None => {}
        }
        if r.failures.saturating_add(r.pending) >= self.max_failures {
            return Err(BUSY_RETRY);
        }
        r.pending += 1;
        Ok(Attempt {
            throttle: self,
            key: Some(key.clone()),
        })
    }

    /// The record of `key`, made if there is none (room made first).
    fn record<'a>(
        &self,
        records: &'a mut HashMap<ThrottleKey, Record>,
        key: &ThrottleKey,
        now: Instant,
    ) -> &'a mut Record {
        if records.len() >= MAX_TRACKED && !records.contains_key(key) {
            self.forget(records, now);
        }
        records.entry(key.clone()).or_insert(Record {
            failures: 0,
            last: now,
            locked_until: None,
            pending: 0,
        })
    }

    /// Settles a check admitted for `key`: its place is given back, and
    /// counted as a failure when `failed`.
    fn settle_at(&self, key: &ThrottleKey, failed: bool, now: Instant) {
        let mut records = self.records();
        if let Some(r) = records.get_mut(key) {
            r.pending = r.pending.saturating_sub(1);
        }
        if failed {
            self.count_failure(&mut records, key, now);
        }
    }

    /// Count a failed check against `key` (one that was not admitted).
    #[cfg(test)]
    fn failed_at(&self, key: &ThrottleKey, now: Instant) {
        let mut records = self.records();
        self.count_failure(&mut records, key, now);
    }

    fn count_failure(
        &self,
        records: &mut HashMap<ThrottleKey, Record>,
        key: &ThrottleKey,
        now: Instant,
    ) {
        if self.max_failures == 0 {
            return;
        }
        let r = self.record(records, key, now);
        if r.locked_until.is_some_and(|until| until > now) {
            return;
        }
        if now.duration_since(r.last) >= self.window || r.locked_until.is_some() {
            r.failures = 0;
            r.locked_until = None;
        }
        r.failures += 1;
        r.last = now;
        if r.failures >= self.max_failures {
            r.locked_until = Some(now + self.window);
            tracing::warn!(client = ?key, failures = r.failures, lockout = ?self.window, "too many failed logins; locked out");
        }
    }

    fn forget(&self, records: &mut HashMap<ThrottleKey, Record>, now: Instant) {
        let window = self.window;
        records.retain(|_, r| match r.locked_until {
            _ if r.pending > 0 => true,
            Some(until) => until > now,
            None => now.duration_since(r.last) < window,
        });
        if records.len() >= MAX_TRACKED {
            let mut lasts: Vec<Instant> = records.values().map(|r| r.last).collect();
            lasts.sort_unstable();
            let cut = lasts[lasts.len() / 2];
            records.retain(|_, r| r.last > cut);
        }
    }
}

/// A check admitted by [`LoginThrottle::admit`], holding its place in the
/// count: [`Attempt::failed`] counts it as a failure; dropped otherwise
/// (the password was right, or the check could not be made), it gives the
/// place back.
pub(crate) struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    /// `None` when the limit is off.
    key: Option<ThrottleKey>,
}

impl Attempt<'_> {
    /// The password was wrong.
    pub(crate) fn failed(mut self) {
        if let Some(key) = self.key.take() {
            self.throttle.settle_at(&key, true, Instant::now());
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.throttle.settle_at(&key, false, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn addr(s: &str) -> ThrottleKey {
        ThrottleKey::new(s.parse().ok(), "ignored")
    }

    #[test]
    fn locks_out_after_max_failures_for_the_window_then_forgets() {
        let t = LoginThrottle::new(3, Duration::from_secs(10));
        let k = addr("192.0.2.1");
        let t0 = Instant::now();
        for i in 0..3 {
            assert!(t.admit_at(&k, t0).is_ok(), "attempt {i}");
            t.failed_at(&k, t0);
        }
        assert_eq!(t.admit_at(&k, t0).err(), Some(Duration::from_secs(10)));
        let later = t0 + Duration::from_secs(4);
        assert_eq!(t.admit_at(&k, later).err(), Some(Duration::from_secs(6)));
        // Failing while locked out does not extend the lockout.
        t.failed_at(&k, later);
        let after = t0 + Duration::from_secs(10);
        assert!(t.admit_at(&k, after).is_ok());
        t.failed_at(&k, after);
        assert!(t.admit_at(&k, after).is_ok(), "counting started again");
        // Another client was never affected.
        assert!(t.admit_at(&addr("192.0.2.2"), t0).is_ok());
    }

    #[test]
    fn a_quiet_window_forgets_failures_and_less_does_not() {
        let t = LoginThrottle::new(3, Duration::from_secs(10));
        let k = addr("192.0.2.1");
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        t.failed_at(&k, at(0));
        t.failed_at(&k, at(1));
        t.failed_at(&k, at(11));
        assert!(t.admit_at(&k, at(11)).is_ok(), "10 s without failure");
        t.failed_at(&k, at(20));
        t.failed_at(&k, at(29));
        assert!(t.admit_at(&k, at(29)).is_err(), "spaced out, they add up");
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_v4_as_v4() {
        let a = addr("2001:db8:1:2::1");
        let b = addr("2001:db8:1:2:ffff::9");
        assert_eq!(a, b);
        assert_ne!(a, addr("2001:db8:1:3::1"));
        let mapped = ThrottleKey::new(
            Some(IpAddr::V6(Ipv6Addr::from([
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1,
            ]))),
            "x",
        );
        assert_eq!(mapped, addr("192.0.2.1"));
        assert_eq!(
            ThrottleKey::new(None, "alice"),
            ThrottleKey::User("alice".into())
        );
    }

    #[test]
    fn zero_turns_it_off() -> Result<(), Duration> {
        let t = LoginThrottle::new(0, Duration::from_secs(10));
        let k = addr("192.0.2.1");
        for _ in 0..100 {
            t.admit(&k)?.failed();
        }
        assert!(t.admit(&k).is_ok());
        Ok(())
    }

    #[test]
    fn checks_under_way_hold_their_place_until_settled() -> Result<(), Duration> {
        let t = LoginThrottle::new(3, Duration::from_secs(10));
        let k = addr("192.0.2.1");
        let t0 = Instant::now();
        let under_way = [
            t.admit_at(&k, t0)?,
            t.admit_at(&k, t0)?,
            t.admit_at(&k, t0)?,
        ];
        assert_eq!(t.admit_at(&k, t0).err(), Some(BUSY_RETRY), "no tries left");
        let [first, second, third] = under_way;
        // A right password gives its place back; a wrong one keeps it.
        drop(first);
        second.failed();
        third.failed();
        let fourth = t.admit_at(&k, t0)?;
        assert!(t.admit_at(&k, t0).is_err());
        fourth.failed();
        // Settled now: locked out for a window from now, not from t0.
        let locked = t.admit_at(&k, Instant::now()).err();
        assert!(locked > Some(Duration::from_secs(9)), "{locked:?}");
        Ok(())
    }

    #[test]
    fn checks_under_way_do_not_lock_the_client_out() -> Result<(), Duration> {
        // The places taken by checks under way refuse more checks, but
        // the client is not locked out: a password verified moments ago
        // (cached, no check needed) is still let through by the service.
        let t = LoginThrottle::new(2, Duration::from_secs(10));
        let k = addr("192.0.2.1");
        let t0 = Instant::now();
        let under_way = [t.admit_at(&k, t0)?, t.admit_at(&k, t0)?];
        assert!(t.admit_at(&k, t0).is_err(), "no tries left");
        assert_eq!(t.locked_at(&k, t0), Ok(()));
        let [first, second] = under_way;
        first.failed();
        second.failed();
        assert!(
            t.locked_at(&k, Instant::now()).is_err(),
            "two failures lock it"
        );
        Ok(())
    }
}
