//! The byte pump of one session: client→device on the session's thread, device→client on a
//! second thread, until either side ends.
//!
//! The device side is any descriptor that implements [`Device`]: a serial [`Line`] here, a
//! PTY master in client mode. What its end of stream (EOF, `EIO`, poll's hang-up) means is the
//! device's to say: for a serial line the device is gone; for a PTY master only that no
//! local program has the tty open.
//!
//! Neither thread may block forever once the session is over. A [`Control`] ends a session
//! from anywhere (the other direction, the registry at shutdown, a kick): it shuts the socket
//! down, which wakes a thread blocked in `recv`, and signals an eventfd, which wakes a thread
//! waiting in `poll`. The device is non-blocking and always waited on with the eventfd
//! beside it, so a silent or flow-controlled modem cannot pin a thread; a full socket is
//! waited on with the eventfd and the device's hang-up beside it.
//!
//! Back-pressure is end to end: a thread reads its source only after the previous chunk was
//! written to the sink, so a stalled peer stalls its source instead of growing a buffer.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::serial::Line;
use crate::sys::{self, EventFd, Interest, Pages};

pub mod client;
pub mod outbox;
pub mod telnet;

/// The device side of a relay: a non-blocking descriptor, and what its end means.
pub trait Device: AsFd + Send + Sync + 'static {
    /// Why the session ends when the device reads end of file or `EIO`, or polls hung up.
    fn end_of_stream(&self) -> End {
        End::DeviceGone
    }
}

/// A serial line ends when the device goes: unplugged, or its driver hung up.
impl Device for Line {}

/// Bytes moved per read; one buffer of this size per direction.
pub const BUF_SIZE: usize = 16 * 1024;
/// A device read this long suggests more is queued behind it (a pty or fast UART in a bulk
/// transfer delivers up to 4 KiB per read).
const LONG_READ: usize = 1024;
/// How long a device may take to accept the last bytes of a client that has left.
pub const DRAIN: Duration = Duration::from_secs(1);

thread_local! {
    /// This thread's copy buffer, kept between the sessions a pooled worker serves: a fresh
    /// mapping per session would cost its system calls and, unmapped at the end, interrupt
    /// the other CPUs for a TLB shoot-down. It goes when the worker exits.
    static BUFFER: Cell<Option<Pages>> = const { Cell::new(None) };
}

/// Runs one direction's copy `f` with this thread's copy buffer; without one and no memory
/// for it, ends the session (nothing moved).
fn with_buffer(ctl: &Control, f: impl FnOnce(&mut [u8]) -> u64) -> u64 {
    let mut buf = match BUFFER.take() {
        Some(buf) => buf,
        None => match Pages::new(BUF_SIZE) {
            Ok(buf) => buf,
            Err(e) => {
                ctl.stop(End::NoBuffer(e));
                return 0;
            }
        },
    };
    let moved = f(&mut buf);
    BUFFER.set(Some(buf));
    moved
}

/// Why a session ended; the first reason recorded wins.
#[derive(Debug)]
pub enum End {
    /// The client closed the connection.
    ClientClosed,
    /// The connection failed (reset, timeout).
    ClientError(io::Error),
    /// The device hung up or disappeared (unplugged USB, closed pty master).
    DeviceGone,
    /// Client mode: the last local program closed the tty.
    TtyClosed,
    /// A device read or write failed.
    DeviceError(io::Error),
    /// SIGTERM/SIGINT: modemd is shutting down.
    Shutdown,
    /// No traffic either way for the line's `idle=` time.
    Idle,
    /// The relay thread could not be started.
    NoThread(io::Error),
    /// No memory for a copy buffer.
    NoBuffer(io::Error),
    /// A copy thread panicked (a bug; builds for routers abort instead).
    Panicked,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::ClientClosed => write!(f, "client closed"),
            End::ClientError(e) => write!(f, "client error: {e}"),
            End::DeviceGone => write!(f, "device gone"),
            End::TtyClosed => write!(f, "tty closed"),
            End::DeviceError(e) => write!(f, "device error: {e}"),
            End::Shutdown => write!(f, "signal"),
            End::Idle => write!(f, "idle"),
            End::NoThread(e) => write!(f, "cannot start relay thread: {e}"),
            End::NoBuffer(e) => write!(f, "cannot map a copy buffer: {e}"),
            End::Panicked => write!(f, "internal error"),
        }
    }
}

/// The handle that ends a session: shared by its two threads and the daemon's registry.
#[derive(Debug)]
pub struct Control {
    client: TcpStream,
    wake: EventFd,
    end: Mutex<Option<End>>,
    /// Set once `end` is: the copy loop checks it per chunk without taking the mutex.
    ending: AtomicBool,
    activity: Activity,
}

impl Control {
    /// A control for a session with `client`, woken through `wake`.
    pub fn new(client: TcpStream, wake: EventFd) -> Control {
        Control {
            client,
            wake,
            end: Mutex::new(None),
            ending: AtomicBool::new(false),
            activity: Activity {
                start: Instant::now(),
                last_ms: AtomicU32::new(0),
            },
        }
    }

    /// The client connection.
    pub fn client(&self) -> &TcpStream {
        &self.client
    }

    /// Ends the session for `why` (ignored if it already ended for another reason).
    pub fn stop(&self, why: End) {
        // Ends on the device side leave the client able to read one last line saying why;
        // shutting down the read side is enough to wake the thread blocked in recv.
        let how = match why {
            End::DeviceGone | End::DeviceError(_) | End::Idle | End::TtyClosed => Shutdown::Read,
            _ => Shutdown::Both,
        };
        {
            let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
            if end.is_some() {
                // Already ending: the first reason chose how far the socket goes down.
                return;
            }
            *end = Some(why);
            self.ending.store(true, Ordering::Release);
        }
        // ENOTCONN if the peer is already gone: nothing left to wake on that side.
        let _ = self.client.shutdown(how);
        self.wake.signal();
    }

    /// Whether the session was told to end.
    pub fn stopped(&self) -> bool {
        self.ending.load(Ordering::Acquire)
    }

    /// How long a wait may last before the session has been silent both ways for `idle`
    /// (`None`: no limit); `Err(End::Idle)` once it has.
    fn idle_left(&self, idle: Option<Duration>) -> Result<Option<Duration>, End> {
        match idle.map(|limit| limit.saturating_sub(self.activity.since())) {
            Some(Duration::ZERO) => Err(End::Idle),
            left => Ok(left),
        }
    }

    /// Takes the reason the session ended.
    pub fn take_end(&self) -> Option<End> {
        self.end.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

// A session's control is shared by its two threads, the registry and the signal thread.
const _: () = {
    const fn shareable<T: Send + Sync>() {}
    shareable::<Control>();
};

/// Bytes moved by a finished relay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Client → device.
    pub to_device: u64,
    /// Device → client.
    pub to_client: u64,
}

/// When either direction last moved a byte, for `idle=`; counted from the session's start.
///
/// Milliseconds since the session started, in 32 bits: 32-bit MIPS has no 64-bit atomics.
/// The count wraps after 49 days, but only the gap to now matters and wrapping arithmetic
/// keeps it exact for any gap shorter than that (`idle=` allows a week at most).
#[derive(Debug)]
struct Activity {
    start: Instant,
    last_ms: AtomicU32,
}

impl Activity {
    fn now_ms(&self) -> u32 {
        // Truncation is the wrap described above.
        crate::sys::millis(self.start.elapsed()) as u32
    }

    fn touch(&self) {
        // Both directions touch it per chunk; writing only when the millisecond changed keeps
        // the cache line from bouncing between the two threads' CPUs at full speed.
        let now = self.now_ms();
        if self.last_ms.load(Ordering::Relaxed) != now {
            self.last_ms.store(now, Ordering::Relaxed);
        }
    }

    fn since(&self) -> Duration {
        let last = self.last_ms.load(Ordering::Relaxed);
        Duration::from_millis(self.now_ms().wrapping_sub(last).into())
    }
}

/// Copies bytes both ways until the session ends (or, with `idle`, until nothing moved for
/// that long); returns what moved. The reason is left in `ctl` for the caller, and the other
/// direction has let go of `line` by the time this returns.
pub fn run<D: Device>(ctl: &Arc<Control>, line: &Arc<D>, idle: Option<Duration>) -> Totals {
    let line: Arc<dyn Device> = line.clone();
    run_dyn(ctl, line, idle)
}

/// [`run`], compiled once for every kind of device: the copy loops take the device as a
/// trait object, whose one indirect call per system call costs nothing measurable, where a
/// copy per device type cost the router image 4 KB.
fn run_dyn(ctl: &Arc<Control>, line: Arc<dyn Device>, idle: Option<Duration>) -> Totals {
    let shared = Arc::clone(&line);
    pump(
        ctl,
        Box::new(move |ctl| device_to_client(ctl, &*shared, idle)),
        &|ctl| client_to_device(ctl, &*line),
    )
}

/// The device → client direction, on its own thread; it owns its reference to the line.
type ToClient = Box<dyn FnOnce(&Control) -> u64 + Send>;

/// Runs `to_client` on a second thread and `to_device` on this one until the session ends;
/// each returns what it moved. Not generic: one copy serves raw and Telnet lines.
fn pump(ctl: &Arc<Control>, to_client: ToClient, to_device: &dyn Fn(&Control) -> u64) -> Totals {
    // `idle=` counts from here, not from the accept: admission (DNS) and the claim can take
    // seconds.
    ctl.activity.touch();
    let (promise, outcome) = crate::thread::promise();
    let job = {
        let ctl = Arc::clone(ctl);
        Box::new(move || {
            // The call consumes the closure and its reference to the line: the session hangs
            // up when it drops the last one, so that goes before the result.
            let n = to_client(&ctl);
            promise.keep(n);
        })
    };
    if let Err(e) = crate::thread::run(c"relay", job) {
        ctl.stop(End::NoThread(e));
        return Totals::default();
    }
    let on_unwind = JoinOnUnwind {
        ctl,
        outcome: &outcome,
    };
    let to_device = to_device(ctl);
    drop(on_unwind);
    // A job that panicked has been reported by the panic hook; its count is lost, the
    // session is not.
    let to_client = outcome.wait(None).unwrap_or(0);
    Totals {
        to_device,
        to_client,
    }
}

/// If this direction panics (builds that unwind), ends the session and waits for the other
/// one, so that the line is still hung up and closed before the session removes the lock.
struct JoinOnUnwind<'a> {
    ctl: &'a Control,
    outcome: &'a crate::thread::Outcome<u64>,
}

impl Drop for JoinOnUnwind<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.ctl.stop(End::Panicked);
            self.outcome.wait(None);
        }
    }
}

fn client_to_device(ctl: &Control, line: &dyn Device) -> u64 {
    with_buffer(ctl, |buf| copy_to_device(ctl, line, buf))
}

fn copy_to_device(ctl: &Control, line: &dyn Device, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    while let Some(n) = read_client(ctl, buf) {
        if !deliver(ctl, line, &buf[..n], &mut total) {
            break;
        }
    }
    total
}

/// Reads what the client sent into `buf`; `None` once the session is to end (why is
/// recorded in `ctl`).
fn read_client(ctl: &Control, buf: &mut [u8]) -> Option<usize> {
    loop {
        match ctl.client().read(buf) {
            Ok(0) => ctl.stop(End::ClientClosed),
            Ok(n) => {
                ctl.activity.touch();
                return Some(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => ctl.stop(End::ClientError(e)),
        }
        return None;
    }
}

/// [`write_device`], ending the session on a failure; false once the session is to end.
fn deliver(ctl: &Control, line: &dyn Device, data: &[u8], total: &mut u64) -> bool {
    match write_device(ctl, line, data, total) {
        Ok(()) => true,
        Err(end) => {
            if let Some(end) = end {
                ctl.stop(end);
            }
            false
        }
    }
}

/// Writes all of `data` to the non-blocking device, waiting in `poll` when its queue is full,
/// counting what went into `total` (a chunk cut short by the session's end counts what the
/// device took of it). `Err(None)`: the session was stopped meanwhile.
///
/// A device that takes no data (flow control, a wedged modem) must not pin the session once
/// the client is gone: the client is watched too, and after it leaves the device gets
/// [`DRAIN`] to take what was already accepted.
fn write_device(
    ctl: &Control,
    line: &dyn Device,
    mut data: &[u8],
    total: &mut u64,
) -> Result<(), Option<End>> {
    let mut client_gone: Option<Instant> = None;
    while !data.is_empty() {
        match sys::write(line.as_fd(), data) {
            Ok(n) => {
                data = &data[n..];
                *total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let fds = [
                    (line.as_fd().as_raw_fd(), Interest::Write),
                    (ctl.wake.raw(), Interest::Read),
                    (ctl.client.as_raw_fd(), Interest::Peer),
                ];
                let timeout = client_gone.map(|t| DRAIN.saturating_sub(t.elapsed()));
                if timeout == Some(Duration::ZERO) {
                    return Err(Some(End::ClientClosed));
                }
                // Once the client is gone its socket stays "ready"; stop watching it.
                let watched = if client_gone.is_some() { 2 } else { 3 };
                let ready =
                    sys::poll(&fds[..watched], timeout).map_err(|e| Some(End::DeviceError(e)))?;
                if ready[1].read {
                    return Err(None);
                }
                if ready[0].hangup && !ready[0].write {
                    return Err(Some(line.end_of_stream()));
                }
                if ready[2].hangup && client_gone.is_none() {
                    client_gone = Some(Instant::now());
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                return Err(Some(line.end_of_stream()));
            }
            Err(e) => return Err(Some(End::DeviceError(e))),
        }
    }
    Ok(())
}

fn device_to_client(ctl: &Control, line: &dyn Device, idle: Option<Duration>) -> u64 {
    with_buffer(ctl, |buf| copy_to_client(ctl, line, idle, buf))
}

fn copy_to_client(ctl: &Control, line: &dyn Device, idle: Option<Duration>, buf: &mut [u8]) -> u64 {
    let mut total = 0u64;
    let fds = [
        (line.as_fd().as_raw_fd(), Interest::Read),
        (ctl.wake.raw(), Interest::Read),
    ];
    // Whether to poll before the next read. After a long read, read again at once: in a bulk
    // transfer more is usually queued, and a poll would be a wasted system call per chunk.
    // After a short one (a reply, or a UART at modem speed trickling in) the queue is most
    // likely empty, and reading first would be the wasted call.
    let mut must_wait = true;
    loop {
        if must_wait {
            let timeout = match ctl.idle_left(idle) {
                Ok(timeout) => timeout,
                Err(end) => {
                    ctl.stop(end);
                    return total;
                }
            };
            let ready = match sys::poll(&fds, timeout) {
                Ok(r) => r,
                Err(e) => {
                    ctl.stop(End::DeviceError(e));
                    return total;
                }
            };
            if ready[1].read {
                return total;
            }
            if !(ready[0].read || ready[0].hangup) {
                continue;
            }
        } else if ctl.stopped() {
            return total;
        }
        let n = match sys::read(line.as_fd(), buf) {
            Ok(0) => {
                ctl.stop(line.end_of_stream());
                return total;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                must_wait = true;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => {
                ctl.stop(line.end_of_stream());
                return total;
            }
            Err(e) => {
                ctl.stop(End::DeviceError(e));
                return total;
            }
        };
        must_wait = n < LONG_READ;
        ctl.activity.touch();
        match write_client(ctl, line, idle, &buf[..n], &mut total) {
            Ok(()) => {}
            Err(Some(end)) => {
                ctl.stop(end);
                return total;
            }
            Err(None) => return total,
        }
    }
}

/// Writes all of `data` to the client, counting what went into `total`. `Err(None)`: the
/// session was stopped meanwhile.
///
/// A client that stops reading must not pin the session when the device goes (the other
/// thread is then blocked reading that same silent client): while the socket is full, the
/// device is watched for a hang-up beside it. A socket with room costs one `send`, as a
/// blocking write would.
fn write_client(
    ctl: &Control,
    line: &dyn Device,
    idle: Option<Duration>,
    mut data: &[u8],
    total: &mut u64,
) -> Result<(), Option<End>> {
    while !data.is_empty() {
        match sys::send(ctl.client.as_fd(), data, libc::MSG_DONTWAIT) {
            Ok(n) => {
                data = &data[n..];
                *total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let fds = [
                    (ctl.client.as_raw_fd(), Interest::Write),
                    (ctl.wake.raw(), Interest::Read),
                    (line.as_fd().as_raw_fd(), Interest::Gone),
                ];
                // A client that takes nothing while the device has nothing new is silent both
                // ways too, as far as idle= goes.
                let timeout = ctl.idle_left(idle).map_err(Some)?;
                let ready = sys::poll(&fds, timeout).map_err(|e| Some(End::ClientError(e)))?;
                if ready[1].read {
                    return Err(None);
                }
                if ready[2].hangup {
                    return Err(Some(line.end_of_stream()));
                }
            }
            Err(e) => return Err(Some(End::ClientError(e))),
        }
    }
    Ok(())
}
