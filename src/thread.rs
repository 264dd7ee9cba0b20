//! modemd's threads: started one way, and reused for a moment after their job.
//!
//! Every session is thread-per-connection: a job for the session and one for its second
//! copy direction. Starting a thread costs a stack mapping, a clone, page faults on the new
//! stack and, at exit, an unmap whose TLB shoot-down interrupts the other CPUs; measured, it
//! was most of the time from connect to first byte. So a thread whose job is done waits up to
//! [`LINGER`] for the next one, and at most [`SPARE`] wait at once: a burst of clients reuses
//! threads, an idle daemon is back to its listener thread within seconds.
//!
//! Threads start through pthread_create(3) here, not `std::thread`: std's start-up registers
//! each thread's guard page in a map (a BTreeMap, for its stack overflow message), maps an
//! alternate signal stack, keeps a `Thread` with name and ID, spawn hooks and output capture,
//! about 10 KiB of the router image that modemd uses none of. One job type,
//! `Box<dyn FnOnce>`, for every thread.

use std::any::Any;
use std::ffi::{CStr, CString, c_void};
use std::io;
use std::mem::MaybeUninit;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Stack of every worker: the session runs the resolver (getaddrinfo, res_query), whose glibc
/// implementation wants tens of KiB; untouched pages cost no memory.
pub const STACK: usize = 256 * 1024;
/// How long a worker without a job waits for one before it exits.
pub const LINGER: Duration = Duration::from_secs(1);
/// Most workers waiting for a job at once; more exit at the end of their job.
pub const SPARE: usize = 8;

/// A job for a worker.
pub type Job = Box<dyn FnOnce() + Send>;

/// Workers waiting for jobs. One serves the daemon ([`run`]); tests make their own.
pub struct Pool {
    state: Mutex<PoolState>,
    posted: Condvar,
    linger: Duration,
    spare: usize,
}

struct PoolState {
    /// Jobs posted for a waiting worker, not taken yet. Never longer than `waiting`: a job
    /// is posted only if a worker is there to take it, and a worker leaves only if none is.
    jobs: Vec<(&'static CStr, Job)>,
    waiting: usize,
}

static WORKERS: Pool = Pool::new(LINGER, SPARE);

/// Runs `job` on a waiting worker, or on a new thread if none waits. `name` is what `ps`
/// and `top -H` show for the thread while it runs the job.
pub fn run(name: &'static CStr, job: Job) -> io::Result<()> {
    WORKERS.run(name, job)
}

impl Pool {
    /// A pool whose idle workers wait `linger` for a job, at most `spare` at once.
    pub const fn new(linger: Duration, spare: usize) -> Pool {
        Pool {
            state: Mutex::new(PoolState {
                jobs: Vec::new(),
                waiting: 0,
            }),
            posted: Condvar::new(),
            linger,
            spare,
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many workers wait for a job.
    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Runs `job` on a waiting worker of this pool, or on a new thread.
    pub fn run(&'static self, name: &'static CStr, job: Job) -> io::Result<()> {
        let mut s = self.lock();
        if s.waiting > s.jobs.len() {
            s.jobs.push((name, job));
            drop(s);
            // Not under the lock: the woken worker would block on it at once.
            self.posted.notify_one();
            return Ok(());
        }
        drop(s);
        // `ps` shows the job's name, set in `work`.
        spawn(
            "worker".into(),
            STACK,
            Box::new(move || self.work(name, job)),
        )
        .map(drop)
    }

    fn work(&self, mut name: &'static CStr, mut job: Job) {
        crate::sys::set_thread_name(name);
        loop {
            job();
            let Some((next_name, next)) = self.next_job() else {
                return;
            };
            if next_name != name {
                crate::sys::set_thread_name(next_name);
                name = next_name;
            }
            job = next;
        }
    }

    /// Waits up to `linger` for a posted job; `None`: time to exit.
    fn next_job(&self) -> Option<(&'static CStr, Job)> {
        let mut s = self.lock();
        if s.waiting >= self.spare {
            return None;
        }
        s.waiting += 1;
        let deadline = Instant::now() + self.linger;
        loop {
            if let Some(job) = s.jobs.pop() {
                s.waiting -= 1;
                return Some(job);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                s.waiting -= 1;
                return None;
            }
            s = match self.posted.wait_timeout(s, left) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// Starts a dedicated thread (not from the pool) called `name`, with a stack of `stack`
/// bytes, running `f`: for threads that live as long as the daemon.
pub fn spawn(name: String, stack: usize, f: Job) -> io::Result<JoinHandle> {
    // As std's Builder::name, which refuses a name with a NUL in it (by panicking).
    let name = CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let done = Arc::new(AtomicBool::new(false));
    let start = Box::into_raw(Box::new(Start {
        name,
        job: f,
        done: Arc::clone(&done),
    }));
    let mut attr = MaybeUninit::<libc::pthread_attr_t>::uninit();
    let mut thread = MaybeUninit::<libc::pthread_t>::uninit();
    // SAFETY: pthread_attr_init initialises `attr` before setstacksize and pthread_create
    // read it, and it is destroyed once, after them. `start` is a valid Box pointer that
    // `run_start` takes over if the thread starts; if not, it is still ours to free here.
    let r = unsafe {
        libc::pthread_attr_init(attr.as_mut_ptr());
        // std's minimum too: a smaller size is EINVAL.
        let mut r =
            libc::pthread_attr_setstacksize(attr.as_mut_ptr(), stack.max(libc::PTHREAD_STACK_MIN));
        if r == 0 {
            r = libc::pthread_create(thread.as_mut_ptr(), attr.as_ptr(), run_start, start.cast());
        }
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if r != 0 {
            drop(Box::from_raw(start));
        }
        r
    };
    if r != 0 {
        return Err(io::Error::from_raw_os_error(r));
    }
    // SAFETY: pthread_create succeeded, so it wrote the thread's ID.
    let thread = unsafe { thread.assume_init() };
    Ok(JoinHandle {
        thread: Detach(thread),
        done,
    })
}

/// What a new thread of [`spawn`] gets.
struct Start {
    name: CString,
    job: Job,
    /// Set when the job has ended, for [`JoinHandle::is_finished`].
    done: Arc<AtomicBool>,
}

/// A panic's payload, as `std::thread::JoinHandle::join` hands it over.
type Payload = Box<dyn Any + Send>;

/// The start routine of [`spawn`]'s threads: names the thread, runs the job. A panic that
/// unwinds (native test builds) stops here, as in a std thread, and goes to `join`: it must
/// not unwind into the C library.
extern "C" fn run_start(start: *mut c_void) -> *mut c_void {
    // SAFETY: `spawn` passes a pointer from Box::into_raw and gives up its ownership.
    let Start { name, job, done } = *unsafe { Box::from_raw(start.cast::<Start>()) };
    crate::sys::set_thread_name(&name);
    drop(name);
    let ended = panic::catch_unwind(AssertUnwindSafe(job));
    done.store(true, Ordering::Release);
    match ended {
        Ok(()) => std::ptr::null_mut(),
        Err(payload) => Box::into_raw(Box::new(payload)).cast(),
    }
}

/// A dedicated thread: [`JoinHandle::join`] waits for its end; dropped, the handle lets it
/// run on (detached), as std's does.
pub struct JoinHandle {
    thread: Detach,
    done: Arc<AtomicBool>,
}

/// A thread's ID, which detaches the thread when dropped.
struct Detach(libc::pthread_t);

impl JoinHandle {
    /// Whether the thread's job has ended (then `join` returns at once, or nearly).
    pub fn is_finished(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Waits for the thread to end: `Err` with the payload of a panic that ended it.
    pub fn join(self) -> Result<(), Payload> {
        let thread = self.thread.0;
        // Joined here, so not to be detached.
        std::mem::forget(self.thread);
        let mut ret: *mut c_void = std::ptr::null_mut();
        // SAFETY: `thread` is a joinable thread (never joined or detached: this handle was its
        // only owner), and `ret` a valid place for its return value.
        let r = unsafe { libc::pthread_join(thread, &mut ret) };
        if r != 0 {
            return Err(Box::new(io::Error::from_raw_os_error(r)));
        }
        if ret.is_null() {
            Ok(())
        } else {
            // SAFETY: a non-null return of `run_start` is a Box<Payload> given up by it.
            Err(*unsafe { Box::from_raw(ret.cast::<Payload>()) })
        }
    }
}

impl Drop for Detach {
    fn drop(&mut self) {
        // SAFETY: the thread was neither joined (`join` forgets its Detach) nor detached.
        unsafe { libc::pthread_detach(self.0) };
    }
}

/// The result of a job, for whoever waits for it.
pub struct Outcome<T> {
    state: Mutex<Option<Option<T>>>,
    ready: Condvar,
}

/// The job's side of an [`Outcome`]: [`Promise::keep`] hands over the result; dropped
/// without it (a job that panicked), the outcome says so instead of leaving its waiter
/// waiting.
pub struct Promise<T>(Option<Arc<Outcome<T>>>);

/// A new outcome and the promise that fills it.
pub fn promise<T>() -> (Promise<T>, Arc<Outcome<T>>) {
    let outcome = Arc::new(Outcome {
        state: Mutex::new(None),
        ready: Condvar::new(),
    });
    (Promise(Some(Arc::clone(&outcome))), outcome)
}

impl<T> Outcome<T> {
    fn fill(&self, value: Option<T>) {
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = Some(value);
        self.ready.notify_all();
    }

    /// Waits at most `limit` (`None`: for ever) for the result; `None` if the time ran out
    /// or the job ended without one.
    pub fn wait(&self, limit: Option<Duration>) -> Option<T> {
        let deadline = limit.map(|l| Instant::now() + l);
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(value) = s.take() {
                return value;
            }
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    match self.ready.wait_timeout(s, left) {
                        Ok((guard, _)) => guard,
                        Err(p) => p.into_inner().0,
                    }
                }
            };
        }
    }
}

impl<T> Promise<T> {
    /// Hands over the job's result.
    pub fn keep(mut self, value: T) {
        if let Some(outcome) = self.0.take() {
            outcome.fill(Some(value));
        }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(outcome) = self.0.take() {
            outcome.fill(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;
    use std::thread::ThreadId;

    const LONG: Duration = Duration::from_secs(5);

    fn wait_until(mut done: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + LONG;
        while !done() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    fn on_which_thread(pool: &'static Pool) -> ThreadId {
        let (p, o) = promise();
        pool.run(
            c"test",
            Box::new(move || p.keep(std::thread::current().id())),
        )
        .expect("run");
        o.wait(Some(LONG)).expect("job result")
    }

    #[test]
    fn jobs_run_and_hand_back_results() {
        static POOL: Pool = Pool::new(Duration::from_millis(100), 2);
        let outcomes: Vec<_> = (0..20u64)
            .map(|i| {
                let (p, o) = promise();
                POOL.run(c"test", Box::new(move || p.keep(i * i)))
                    .expect("run");
                o
            })
            .collect();
        for (i, o) in outcomes.iter().enumerate() {
            let i = i as u64;
            assert_eq!(o.wait(Some(LONG)), Some(i * i));
        }
    }

    #[test]
    fn a_waiting_worker_takes_the_next_job_and_leaves_after_linger() {
        // Long enough that a test thread descheduled under load still finds it waiting.
        const LINGER: Duration = Duration::from_secs(2);
        static POOL: Pool = Pool::new(LINGER, 2);
        let first = on_which_thread(&POOL);
        assert!(wait_until(|| POOL.waiting() == 1), "no worker waiting");
        let posted = Instant::now();
        assert_eq!(
            on_which_thread(&POOL),
            first,
            "a new thread while one waited"
        );
        // It waits again only after that job (until then `waiting` is 0 too), so it cannot
        // leave before `posted + LINGER`.
        assert!(
            wait_until(|| POOL.waiting() == 1),
            "worker did not wait again"
        );
        assert!(wait_until(|| POOL.waiting() == 0), "worker never left");
        assert!(posted.elapsed() >= LINGER, "left before its linger");
        assert_ne!(
            on_which_thread(&POOL),
            first,
            "the worker that left took a job"
        );
    }

    #[test]
    fn at_most_spare_workers_wait() {
        static POOL: Pool = Pool::new(Duration::from_secs(10), 3);
        let all = Arc::new(Barrier::new(7));
        for _ in 0..6 {
            let all = Arc::clone(&all);
            POOL.run(
                c"test",
                Box::new(move || {
                    all.wait();
                }),
            )
            .expect("run");
        }
        // Six jobs at once need six threads; done, three of them stay.
        all.wait();
        assert!(
            wait_until(|| POOL.waiting() == 3),
            "waiting: {}",
            POOL.waiting()
        );
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(POOL.waiting(), 3);
    }

    #[test]
    fn a_dropped_promise_ends_the_wait() {
        let (p, o) = promise::<u8>();
        run(c"test", Box::new(move || drop(p))).expect("run");
        assert_eq!(o.wait(Some(LONG)), None);
    }

    #[test]
    fn a_dedicated_thread_is_named_and_joined_with_its_panic() {
        let (p, o) = promise();
        let t = spawn(
            "dedicated".into(),
            64 * 1024,
            Box::new(move || {
                let mut name = [0u8; 16];
                // SAFETY: PR_GET_NAME writes at most 16 bytes into `name`.
                unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
                p.keep(name);
            }),
        )
        .expect("spawn");
        assert_eq!(o.wait(Some(LONG)).expect("name")[..10], *b"dedicated\0");
        assert!(t.join().is_ok());
        let t = spawn(
            "panics".into(),
            64 * 1024,
            Box::new(|| panic!("on purpose")),
        )
        .expect("spawn");
        assert!(wait_until(|| t.is_finished()), "never finished");
        let payload = t.join().expect_err("the panic");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"on purpose"));
    }

    #[test]
    fn waiting_times_out() {
        let (_p, o) = promise::<u8>();
        let start = Instant::now();
        assert_eq!(o.wait(Some(Duration::from_millis(50))), None);
        assert!(start.elapsed() >= Duration::from_millis(50));
    }
}
