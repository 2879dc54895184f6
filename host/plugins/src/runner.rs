//! Driving a plugin call to its answer or its deadline, whichever comes
//! first, on the caller's thread or on one of the plugin's own threads.
//!
//! Calls are async wasmtime calls (WASI's sleeps, polls and socket waits are
//! futures), polled by [`run_until`]: a small executor that parks the
//! calling thread between wake-ups and drops the call at its deadline, which
//! cancels whatever the guest was waiting for. Timers and sockets belong to
//! the plugins' own tokio runtime ([`io_runtime`]), never the daemon's.
//!
//! One kind of wait cannot be cancelled: a file operation in a granted
//! directory is a blocking system call (opening a FIFO nobody writes to
//! never returns). A plugin with granted directories therefore runs its
//! calls on its own threads ([`Callers`]), with wasmtime-wasi's file
//! operations done on that thread: the caller waits for the answer until the
//! deadline and then goes on with a timeout, and a thread still inside the
//! call after its deadline is counted as stuck until the system call
//! returns. Plugins without granted directories have no such wait and run
//! on the caller's thread, at no cost beyond the call itself.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// Blocking threads of the plugins' runtime: file reads a plugin started
/// without waiting for them, and name lookups. A thread stuck in one is
/// stuck; this caps how many.
const IO_BLOCKING_THREADS: usize = 32;

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

/// The plugins' tokio runtime: one worker thread that drives the timers and
/// sockets of plugin calls (the calls themselves are polled by their
/// callers), and a bounded pool for the few WASI operations that need a
/// blocking thread. Never the daemon's runtime, so a plugin cannot use up
/// the daemon's blocking pool.
pub(crate) fn io_runtime() -> Result<&'static tokio::runtime::Handle, String> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(IO_BLOCKING_THREADS)
                .thread_name("berth-plugin-io")
                .enable_all()
                .build()
                .map_err(|e| format!("starting the plugins' I/O runtime: {e}"))
        })
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

/// How long a caller waits past the deadline for a plugin thread's answer
/// before counting the call as stuck: the epoch ticker's granularity plus
/// scheduling slack.
pub(crate) const STUCK_AFTER: Duration = Duration::from_millis(50);

/// A plugin thread idle this long exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);

/// Threads per plugin, stuck ones included; a call finding none free fails.
pub(crate) const MAX_THREADS: usize = 64;

type Job = Box<dyn FnOnce() + Send>;

/// The threads one plugin's calls run on (plugins with granted
/// directories), and how many of them are stuck in a call past its
/// deadline.
pub(crate) struct Callers {
    name: Arc<str>,
    inner: Arc<Pool>,
}

struct Pool {
    state: Mutex<PoolState>,
    work: Condvar,
    stuck: AtomicUsize,
}

/// Invariant: the threads waiting for work are `idle + queue.len()` (a
/// queued job has claimed one of them, or a thread started for it).
#[derive(Default)]
struct PoolState {
    queue: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

/// Why a job did not answer.
pub(crate) enum Late {
    /// Every thread is busy or stuck.
    NoThread,
    /// The thread is still inside the call after its deadline.
    Stuck,
    /// The job panicked (a bug on the host's side); the message.
    Panicked(String),
}

/// One job's answer (or its panic), handed from the plugin thread to the
/// caller.
struct Slot<T> {
    state: Mutex<SlotState<std::thread::Result<T>>>,
    done: Condvar,
}

enum SlotState<T> {
    Running,
    Done(T),
    Abandoned,
}

impl Callers {
    pub fn new(name: Arc<str>) -> Callers {
        Callers {
            name,
            inner: Arc::new(Pool {
                state: Mutex::new(PoolState::default()),
                work: Condvar::new(),
                stuck: AtomicUsize::new(0),
            }),
        }
    }

    /// Calls still inside the plugin after their deadline.
    pub fn stuck(&self) -> usize {
        self.inner.stuck.load(Ordering::Acquire)
    }

    /// Runs `job` on one of the plugin's threads and waits for its answer
    /// until `wait_until`. A job that has not answered by then is left to
    /// finish on its thread, counted as stuck until it does.
    pub fn run<T: Send + 'static>(
        &self,
        wait_until: Instant,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Late> {
        let slot = Arc::new(Slot {
            state: Mutex::new(SlotState::Running),
            done: Condvar::new(),
        });
        let answer = Arc::clone(&slot);
        let pool = Arc::clone(&self.inner);
        let boxed: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            let mut state = lock(&answer.state);
            if matches!(*state, SlotState::Abandoned) {
                // The caller gave up on it: it is no longer stuck.
                pool.stuck.fetch_sub(1, Ordering::AcqRel);
            } else {
                *state = SlotState::Done(out);
                answer.done.notify_one();
            }
        });
        self.submit(boxed)?;
        let mut state = lock(&slot.state);
        loop {
            match std::mem::replace(&mut *state, SlotState::Running) {
                SlotState::Done(out) => return out.map_err(panic_message),
                other => *state = other,
            }
            let now = Instant::now();
            if now >= wait_until {
                *state = SlotState::Abandoned;
                let stuck = self.inner.stuck.fetch_add(1, Ordering::AcqRel) + 1;
                tracing::warn!(plugin = %self.name, stuck, "plugin call is stuck in the host past its deadline (a blocking file operation?); its thread is left to finish");
                return Err(Late::Stuck);
            }
            state = slot
                .done
                .wait_timeout(state, wait_until - now)
                .map_or_else(|p| p.into_inner().0, |(g, _)| g);
        }
    }

    fn submit(&self, job: Job) -> Result<(), Late> {
        let mut state = lock(&self.inner.state);
        if state.idle > 0 {
            state.idle -= 1;
            state.queue.push_back(job);
            drop(state);
            self.inner.work.notify_one();
            return Ok(());
        }
        if state.threads >= MAX_THREADS {
            return Err(Late::NoThread);
        }
        // Started under the lock: it takes the job once the lock is free.
        let pool = Arc::clone(&self.inner);
        std::thread::Builder::new()
            .name(format!("berth-plugin-{}", self.name))
            .spawn(move || serve(&pool))
            .map_err(|e| {
                tracing::warn!(plugin = %self.name, error = %e, "starting a plugin thread failed");
                Late::NoThread
            })?;
        state.threads += 1;
        state.queue.push_back(job);
        Ok(())
    }
}

/// A plugin thread: runs jobs until idle for [`IDLE_EXIT`].
fn serve(pool: &Pool) {
    let mut state = lock(&pool.state);
    loop {
        if let Some(job) = state.queue.pop_front() {
            drop(state);
            job();
            state = lock(&pool.state);
            state.idle += 1;
            continue;
        }
        let (next, timeout) = pool
            .work
            .wait_timeout(state, IDLE_EXIT)
            .unwrap_or_else(|p| p.into_inner());
        state = next;
        if timeout.timed_out() && state.queue.is_empty() {
            state.idle -= 1;
            state.threads -= 1;
            return;
        }
    }
}

fn panic_message(panic: Box<dyn std::any::Any + Send>) -> Late {
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_owned());
    Late::Panicked(message)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_job_blocked_past_its_deadline_is_counted_stuck_until_it_returns() {
        let callers = Callers::new(Arc::from("t"));
        assert_eq!(
            callers
                .run(Instant::now() + Duration::from_secs(1), || 3)
                .ok(),
            Some(3)
        );
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let start = Instant::now();
        let late = callers.run(start + Duration::from_millis(50), move || {
            let _ = rx.recv();
        });
        assert!(matches!(late, Err(Late::Stuck)));
        assert!(start.elapsed() < Duration::from_millis(500));
        assert_eq!(callers.stuck(), 1);
        // Other calls still run meanwhile, on another thread.
        assert_eq!(
            callers
                .run(Instant::now() + Duration::from_secs(1), || 4)
                .ok(),
            Some(4)
        );
        drop(tx);
        let until = Instant::now() + Duration::from_secs(5);
        while callers.stuck() != 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(callers.stuck(), 0);
    }
}
