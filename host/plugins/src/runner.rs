//! Driving a plugin call to its answer or its deadline, whichever comes
//! first, on the caller's thread.
//!
//! Calls are async wasmtime calls (WASI's sleeps, polls and socket waits are
//! futures), polled by [`run_until`]: a small executor that parks the
//! calling thread between wake-ups and gives up at the deadline. Timers and
//! sockets belong to the plugins' own tokio runtimes, never the daemon's.
//!
//! At the deadline a call of a plugin without granted directories is
//! dropped, which cancels whatever the guest was waiting for. One kind of
//! wait cannot be cancelled: a file operation in a granted directory is a
//! blocking system call on a thread of the plugin's blocking pool (opening a
//! FIFO nobody writes to never returns). A plugin with granted directories
//! therefore has a runtime of its own ([`Own`]): a call still waiting at its
//! deadline is handed to that runtime and counted as stuck until it ends (a
//! woken guest past its deadline traps at once), so that the caller goes on
//! at the deadline, the plugin can be refused while too many of its calls
//! are stuck, and the threads they hold are the plugin's alone.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::Instant;

/// Blocking threads of the shared runtime (name lookups of plugins granted
/// DNS), and of each runtime of a plugin with granted directories (its file
/// operations): what a stuck system call can hold, at most.
const BLOCKING_THREADS: usize = 16;

/// A thread parked in a plugin call wakes when this waker is woken.
struct ThreadWaker {
    thread: Thread,
    woken: AtomicBool,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.thread.unpark();
    }
}

thread_local! {
    /// One waker per thread, made once: a call that answers at once (the
    /// usual case) allocates nothing here.
    static WAKER: (Arc<ThreadWaker>, Waker) = {
        let inner = Arc::new(ThreadWaker {
            thread: std::thread::current(),
            woken: AtomicBool::new(false),
        });
        let waker = Waker::from(Arc::clone(&inner));
        (inner, waker)
    };
}

/// A tokio runtime for plugin calls: one worker thread that drives timers
/// and sockets (the calls themselves are polled by their callers) and a
/// bounded blocking pool.
fn runtime(name: &str) -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(BLOCKING_THREADS)
        .thread_name(name)
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime for plugin calls: {e}"))
}

/// The runtime shared by plugins without granted directories. Never the
/// daemon's, so a plugin cannot use up the daemon's blocking pool.
pub(crate) fn io_runtime() -> Result<&'static tokio::runtime::Handle, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| runtime("berth-plugin-io"))
        .as_ref()
        .map(tokio::runtime::Runtime::handle)
        .map_err(Clone::clone)
}

/// Polls `fut` on this thread until it completes (`Some`) or `deadline`
/// passes while it waits (`None`; the future is dropped, which cancels the
/// wait). Safe on any thread, an async worker's included: it never enters a
/// runtime's `block_on`, it only makes `rt` the current one for timers.
pub(crate) fn run_until<F: Future>(
    rt: &tokio::runtime::Handle,
    deadline: Instant,
    fut: F,
) -> Option<F::Output> {
    let _context = rt.enter();
    let mut fut = std::pin::pin!(fut);
    WAKER.with(|(inner, waker)| {
        let mut cx = Context::from_waker(waker);
        loop {
            inner.woken.store(false, Ordering::Release);
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return Some(out);
            }
            loop {
                if inner.woken.swap(false, Ordering::AcqRel) {
                    break;
                }
                let now = Instant::now();
                if now >= deadline {
                    return None;
                }
                std::thread::park_timeout(deadline - now);
            }
        }
    })
}

/// The runtime of one plugin with granted directories, and its calls that
/// are still waiting past their deadline.
pub(crate) struct Own {
    runtime: Option<tokio::runtime::Runtime>,
    stuck: Arc<AtomicUsize>,
}

impl Own {
    pub fn new(plugin: &str) -> Result<Own, String> {
        // Thread names are cut at 15 bytes by the kernel.
        let name: String = format!("berth-p-{plugin}").chars().take(15).collect();
        Ok(Own {
            runtime: Some(runtime(&name)?),
            stuck: Arc::new(AtomicUsize::new(0)),
        })
    }

    pub fn handle(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref().map(tokio::runtime::Runtime::handle)
    }

    /// Calls waiting past their deadline.
    pub fn stuck(&self) -> usize {
        self.stuck.load(Ordering::Acquire)
    }

    /// Takes over a call still waiting at its deadline: it is polled to its
    /// end on the plugin's runtime (a guest woken past its deadline traps at
    /// its next instruction), counted as stuck until then.
    pub fn reap<F: Future + Send + 'static>(&self, plugin: &str, call: F) {
        let Some(handle) = self.handle() else {
            return;
        };
        let stuck = self.stuck.fetch_add(1, Ordering::AcqRel) + 1;
        tracing::warn!(
            plugin,
            stuck,
            "plugin call still waiting in the host past its deadline (a blocking file operation?); counted as stuck until it ends"
        );
        let count = Arc::clone(&self.stuck);
        handle.spawn(async move {
            // Counted down however the task ends, even when dropped with
            // the runtime.
            let _done = Done(count);
            call.await;
        });
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        // Calls still stuck are dropped (a blocked system call goes on on
        // its thread); never wait for them, and never block an async worker
        // that happens to drop the last reference to a plugin.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Counts a stuck call down when its task ends.
struct Done(Arc<AtomicUsize>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn run_until_answers_a_ready_future_and_drops_a_waiting_one_at_the_deadline() {
        let rt = io_runtime().unwrap();
        assert_eq!(
            run_until(rt, Instant::now() + Duration::from_secs(1), async { 7 }),
            Some(7)
        );
        let start = Instant::now();
        let slept = run_until(rt, start + Duration::from_millis(50), async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        });
        assert!(slept.is_none());
        assert!(start.elapsed() < Duration::from_millis(500));
        let short = run_until(rt, Instant::now() + Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            1
        });
        assert_eq!(short, Some(1));
    }

    #[test]
    fn a_blocked_call_taken_over_at_its_deadline_is_counted_stuck_until_it_ends() {
        let own = Own::new("t").unwrap();
        let rt = own.handle().unwrap().clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let mut call = Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || rx.recv()).await;
        });
        let start = Instant::now();
        assert!(run_until(&rt, start + Duration::from_millis(50), &mut call).is_none());
        assert!(start.elapsed() < Duration::from_millis(500));
        own.reap("t", call);
        assert_eq!(own.stuck(), 1);
        drop(tx);
        let until = Instant::now() + Duration::from_secs(5);
        while own.stuck() != 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(own.stuck(), 0);
    }
}
