//! `make bench`, side by side: modemd against ser2net (Debian's 4.3, defaults, and tuned with
//! `chardelay: false` and 16 KiB buffers), socat (`TCP-LISTEN` fork + `FILE` raw) and a
//! minimal C poll() relay (`benches/floor/relay.c`), the floor every figure is divided by.
//!
//! Each server exports PTY slaves on 127.0.0.1; the bench holds the masters and plays the
//! modem (an echo for round trips, a checked reader/writer for bulk). All servers run in the
//! same process, interleaved: in every round each measurement is taken for every server in
//! turn (the order rotates from round to round), so a ratio to the C relay compares figures
//! taken seconds apart. Reported: medians over the rounds with min–max and the median ratio.
//!
//! A disconnect / reconnect table shows what a session leaves behind on a device slow to
//! answer (stale bytes, busy replies) and what a reconnect costs; modemd keeps its default
//! hang-up hold there and runs with `hangup=0` everywhere else, like the others.
//!
//! An RFC 2217 table puts modemd's `rfc2217=on` line and ser2net's `telnet(rfc2217)` accepter
//! beside modemd's raw line (1-byte round trips, bulk each way), all three measured in turn in
//! each round through the same client loops, Telnet or not (`compare/telnet.rs`).
//!
//! A client-mode table puts `modemd -l LINK socket://` and `rfc2217://` beside socat's PTY
//! (`socat PTY,link=LINK,raw,echo=0 TCP:…`), each reaching a modemd line of its own: a program
//! on LINK, end to end to the device, with the client process's CPU, wake-ups and memory
//! (`compare/client.rs`). `BENCH_ONLY=client` runs that table alone (a minute), into
//! `benches/results/compare-client-*.md`, so the servers' results stay those of a full run.
//!
//! `BENCH_QUICK=1`: 3 rounds and smaller sizes, under a minute and a half. `BENCH_ROUNDS=N`
//! overrides the round count, `BENCH_NO_DMA_LATENCY=1` leaves `/dev/cpu_dma_latency` alone.
//! modemd is `MODEMD_BIN`, else the static build in `dist/` if there is one, else cargo's.
//! Figures only: nothing here fails on speed. Results: printed, and written to `benches/results/`.

#[path = "compare/client.rs"]
mod client;
#[path = "../tests/common/mod.rs"]
mod common;
#[path = "compare/device.rs"]
mod device;
#[path = "compare/measure.rs"]
mod measure;
#[path = "compare/procs.rs"]
mod procs;
#[path = "compare/report.rs"]
mod report;
#[path = "compare/servers.rs"]
mod servers;
#[path = "compare/telnet.rs"]
mod telnet;

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use client::TtyClient;
use device::Device;
use measure::with_echo;
use report::Results;
use servers::{Hangup, Kind, Server, Tools};

/// Sizes of a run.
struct Plan {
    quick: bool,
    rounds: usize,
    warmup: usize,
    rtt_iters: usize,
    /// Time cap per message size for slow servers (ser2net's default waits ≥ 1 ms per reply).
    rtt_cap: Duration,
    bulk: usize,
    /// Time cap per bulk run for slow servers (ser2net's default 64-byte buffers).
    bulk_cap: Duration,
    connects: usize,
    sessions: usize,
    ports: usize,
    many_warmup: Duration,
    many_time: Duration,
    /// Disconnect / reconnect cycles per server over the whole run, spread over the rounds.
    reconnects: usize,
    /// Client mode's table: LINK opens per client and round, and how long LINK is held open
    /// and quiet for the client's idle CPU.
    opens: usize,
    idle_time: Duration,
    /// Round trips after quiet gaps of 0–50 ms, per client and round.
    gaps: usize,
    /// `BENCH_ONLY=client`: client mode's table alone.
    client_only: bool,
    /// The whole run must end within this; a watchdog kills everything after it.
    budget: Duration,
}

impl Plan {
    fn from_env() -> Plan {
        let quick = std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty());
        let mut p = if quick {
            Plan {
                quick,
                rounds: 3,
                warmup: 50,
                rtt_iters: 500,
                rtt_cap: Duration::from_millis(700),
                bulk: 4 << 20,
                bulk_cap: Duration::from_millis(1500),
                connects: 50,
                sessions: 32,
                ports: 64,
                many_warmup: Duration::from_millis(100),
                many_time: Duration::from_millis(400),
                reconnects: 9,
                opens: 30,
                idle_time: Duration::from_millis(500),
                gaps: 20,
                client_only: false,
                budget: Duration::from_secs(85),
            }
        } else {
            Plan {
                quick,
                rounds: 5,
                warmup: 200,
                rtt_iters: 2000,
                rtt_cap: Duration::from_secs(4),
                bulk: 64 << 20,
                bulk_cap: Duration::from_secs(5),
                connects: 200,
                sessions: 32,
                ports: 256,
                many_warmup: Duration::from_millis(300),
                many_time: Duration::from_secs(2),
                reconnects: 30,
                opens: 100,
                idle_time: Duration::from_secs(2),
                gaps: 60,
                client_only: false,
                budget: Duration::from_secs(590),
            }
        };
        if let Some(n) = std::env::var("BENCH_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            p.rounds = n;
        }
        p.client_only = std::env::var("BENCH_ONLY").is_ok_and(|v| v == "client");
        p
    }

    /// Reconnect cycles in each round: modemd's take 1.1 s each (a hold after either client),
    /// so they are spread over the rounds rather than repeated in each.
    fn reconnects_per_round(&self) -> usize {
        self.reconnects.div_ceil(self.rounds.max(1))
    }

    fn describe(&self) -> String {
        format!(
            "{} mode: {} rounds; round trips {} after {} warm-up (capped at {:.1} s per size); \
             bulk {} MiB each way (capped at {:.1} s per run); {} connects; {} sessions; \
             {} ports for {:.1} s; {} reconnect cycles per round; client mode: {} LINK opens, \
             LINK held quiet {:.1} s, {} round trips after gaps{}",
            if self.quick { "QUICK" } else { "full" },
            self.rounds,
            self.rtt_iters,
            self.warmup,
            self.rtt_cap.as_secs_f64(),
            self.bulk >> 20,
            self.bulk_cap.as_secs_f64(),
            self.connects,
            self.sessions,
            self.ports,
            self.many_time.as_secs_f64(),
            self.reconnects_per_round(),
            self.opens,
            self.idle_time.as_secs_f64(),
            self.gaps,
            if self.client_only {
                " (BENCH_ONLY=client: that table alone)"
            } else {
                ""
            },
        )
    }
}

/// How late the lagging device of the disconnect table echoes: a modem slow to answer.
const LAG: Duration = Duration::from_millis(50);

/// Holds `/dev/cpu_dma_latency` at 0 for the run: idle vCPUs of these VMs otherwise halt and
/// wake slowly, which inflates small-message latency.
fn hold_dma_latency() -> (Option<File>, String) {
    if std::env::var_os("BENCH_NO_DMA_LATENCY").is_some() {
        return (None, "off (BENCH_NO_DMA_LATENCY set)".into());
    }
    let held = OpenOptions::new()
        .write(true)
        .open("/dev/cpu_dma_latency")
        .and_then(|mut f| f.write_all(&0i32.to_ne_bytes()).map(|()| f));
    match held {
        Ok(f) => (Some(f), "on (held at 0 µs for the whole run)".into()),
        Err(e) => (None, format!("off ({e})")),
    }
}

/// Kills every server and exits if the run outlives its budget.
fn watchdog(budget: Duration) {
    thread::spawn(move || {
        thread::sleep(budget);
        eprintln!("compare: still running after {budget:?}: killing the servers, giving up");
        servers::kill_all();
        std::process::exit(2);
    });
}

fn today() -> String {
    let days = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} CPUs ({cpu}), Linux {}", kernel.trim())
}

/// Runs `f` on every server of `order`, recording failures as notes; prints how long each
/// server took.
fn each<'a>(
    res: &mut Results,
    order: &[Kind],
    what: &str,
    mut f: impl FnMut(&mut Results, Kind) -> Result<(), String> + 'a,
) {
    let mut times = Vec::new();
    for &k in order {
        let t = Instant::now();
        if let Err(e) = f(res, k) {
            eprintln!("compare: {what}, {}: {e}", k.name());
            res.note(format!("{what}, {}: {e}", k.name()));
        }
        times.push(format!("{} {:.2} s", k.name(), t.elapsed().as_secs_f64()));
    }
    eprintln!("compare:   {what}: {}", times.join(", "));
}

/// Counts a round that began at `t_round` and keeps the longest one's time.
fn round_done(round: usize, t_round: Instant, done: &mut usize, longest: &mut Duration) {
    *done += 1;
    *longest = (*longest).max(t_round.elapsed());
    eprintln!(
        "compare: round {} took {:.1} s",
        round + 1,
        t_round.elapsed().as_secs_f64()
    );
}

/// Client mode's table for one round: a line and a client for each of `kinds`, all up at
/// once on devices of their own (`devs`, in the same order), measured in turn.
fn client_round(
    res: &mut Results,
    plan: &Plan,
    tools: &Tools,
    data: &[u8],
    round: usize,
    kinds: &[Kind],
    devs: &[Device],
) {
    let dev_of = |k: Kind| &devs[kinds.iter().position(|&x| x == k).expect("kind")];
    let mut order = kinds.to_vec();
    order.rotate_left(round % kinds.len().max(1));
    // The client first in each, so that it goes before its line does.
    let mut up: Vec<(Kind, TtyClient, Server)> = Vec::new();
    each(res, &order, "client start", |_, k| {
        let s = Server::start(k.line(), tools, &[dev_of(k)], Hangup::Free)?;
        up.push((k, TtyClient::start(k, tools, &s, dev_of(k))?, s));
        Ok(())
    });
    order.retain(|k| up.iter().any(|(r, ..)| r == k));
    let of = |k: Kind| {
        let (_, c, s) = up.iter().find(|(r, ..)| *r == k).expect("running");
        (c, s)
    };
    thread::sleep(Duration::from_millis(100));
    // Nobody has LINK open yet: modemd's clients wait for an open, socat is connected.
    each(res, &order, "client closed", |res, k| {
        let (c, _) = of(k);
        let (cpu, wakeups) = client::quiet(c, plan.idle_time);
        res.set("cl_closed_cpu", k, round, cpu);
        res.set("cl_closed_wake", k, round, wakeups);
        res.set("cl_rss_closed", k, round, c.memory().0 as f64);
        Ok(())
    });
    let refs: Vec<&Device> = devs.iter().collect();
    with_echo(&refs, || {
        each(res, &order, "client idle", |res, k| {
            let (c, s) = of(k);
            let i = client::idle(c, s, dev_of(k), plan.idle_time)?;
            res.set("cl_idle_cpu", k, round, i.cpu_us_per_s);
            res.set("cl_idle_wake", k, round, i.wakeups_per_s);
            res.set("cl_rss_idle", k, round, i.rss_kib as f64);
            res.set("cl_hwm_idle", k, round, i.hwm_kib as f64);
            Ok(())
        });
        each(res, &order, "client opens", |res, k| {
            let (c, s) = of(k);
            let (p50, p99, failed) = client::opens(c, s, dev_of(k), plan.opens)?;
            res.set("cl_open_p50", k, round, p50);
            res.set("cl_open_p99", k, round, p99);
            if failed > 0 {
                res.note(format!(
                    "{}: {failed} LINK opens failed in round {}",
                    k.name(),
                    round + 1
                ));
            }
            Ok(())
        });
        each(res, &order, "client round trips", |res, k| {
            let (c, s) = of(k);
            let (l, max) =
                client::latency(c, s, dev_of(k), plan.warmup, plan.rtt_iters, plan.rtt_cap)?;
            res.set("cl_rtt1_p50", k, round, l.p50);
            res.set("cl_rtt1_p99", k, round, l.p99);
            res.set("cl_rtt1_p999", k, round, l.p999);
            res.set("cl_rtt1_max", k, round, max);
            if l.samples < plan.rtt_iters {
                res.note_min(
                    &format!("{}: client round trips capped", k.name()),
                    "fewest samples",
                    l.samples,
                );
            }
            Ok(())
        });
        each(res, &order, "client gaps", |res, k| {
            let (c, s) = of(k);
            let (p50, max) = client::after_gaps(c, s, dev_of(k), plan.gaps)?;
            res.set("cl_gap_p50", k, round, p50);
            res.set("cl_gap_max", k, round, max);
            Ok(())
        });
    });
    each(res, &order, "client bulk", |res, k| {
        let (c, s) = of(k);
        let (b, (rss, hwm)) = client::bulk(c, s, dev_of(k), data, plan.bulk_cap)?;
        for (i, (t, cpu)) in [("cl_up", "cl_cpu_up"), ("cl_down", "cl_cpu_down")]
            .into_iter()
            .enumerate()
        {
            res.set(t, k, round, b[i].mib_s);
            res.set(cpu, k, round, b[i].cpu_us_per_mib);
            if b[i].capped {
                res.note(format!(
                    "{}: client bulk {} capped at {:.1} s (rate over what moved, all of it \
                     checked)",
                    k.name(),
                    &t[3..],
                    plan.bulk_cap.as_secs_f64()
                ));
            }
        }
        res.set("cl_rss_bulk", k, round, rss as f64);
        res.set("cl_hwm_bulk", k, round, hwm as f64);
        Ok(())
    });
    drop(up);
    devs.iter().for_each(Device::flush);
}

/// The setup of the servers' tables and the tables, Markdown.
fn servers_report(res: &Results, telnet_kinds: &[Kind]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "- setup: every server exports PTY slaves on 127.0.0.1 (115200 8N1, raw) and opens the \
         device per session; the bench plays the modem on the masters. ser2net: YAML, \
         `tcp,127.0.0.1,PORT` → `serialdev,DEV,115200n81,local`, defaults; tuned adds \
         `chardelay: false`, `dev-to-net-bufsize`/`net-to-dev-bufsize: 16384`. socat: \
         `TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork,nodelay FILE:DEV,raw,echo=0`, one \
         listener process per port. C relay: one process, one poll() loop over all ports, \
         one session per port, 16 KiB buffers, TCP_NODELAY."
    );
    let _ = writeln!(
        out,
        "- CPU: user+sys of every thread of every server process (scheduler run time, ns). \
         Memory: `smaps_rollup` summed over the server's processes (socat: listeners and \
         session children); sessions measured once each echoed 64 bytes (a modem dialogue), and \
         for 32 sessions again after each echoed 16 KiB more (buffers filled). PSS shares a \
         file's pages among all processes mapping it: the C relay's glibc with everything on \
         the machine, a static modemd with any other modemd running. Connect: connect, \
         send 1 byte, read its echo; the next client starts once the server closed the device."
    );
    let _ = writeln!(
        out,
        "- modemd runs with `hangup=0` (device freed as soon as the client goes) in every \
         table but the disconnect one, connect → first byte included: the other servers hold \
         nothing after a session, and with the default 500 ms hold each reconnect would wait \
         for it. The disconnect table runs modemd with its default hold (`hangup=500`)."
    );
    let _ = writeln!(
        out,
        "- Disconnect / reconnect: the bench plays a modem that echoes {} ms late; per \
         cycle a client connects, sends 64 bytes of its own and, once they reached the \
         device, closes at once without reading, and the next connects at once, sends 64 \
         bytes of its own and reads until their echo is back (2 s at most). Stale: bytes of \
         an earlier client's pattern that this client read. Busy: it was refused, closed or \
         left waiting without its echo. Reconnect: its connect → all of its 64 bytes at the \
         device. Counts over all cycles of all rounds; before each cycle the server has let \
         the device go and the device has said all it had.",
        LAG.as_millis()
    );
    out += "\n";
    out += &res.tables();
    out += &res.reconnect_table(LAG.as_millis() as u64);
    let _ = writeln!(
        out,
        "RFC 2217 setup: modemd raw is the line of the tables above, on a device of its own; \
         modemd rfc2217 adds `rfc2217=on`; ser2net is the tuned one with the accepter \
         `telnet(rfc2217),tcp,127.0.0.1,PORT`. The client is the same for all three: for \
         the Telnet lines it answers the server's negotiation (modemd's own `telnet::Decoder`, \
         RFC 1143), strips it and the COM-PORT notifications from the data and doubles 0xFF \
         in what it sends (random data: 1/256 of it). Round trips: 1 byte, never 0xFF, after \
         the warm-up. Bulk: client→device then device→client, every data byte checked; CPU \
         is the server's.\n"
    );
    out += &res.telnet_table(telnet_kinds);
    out
}

/// The setup of client mode's table and the table, Markdown.
fn client_report(res: &Results, kinds: &[Kind], idle: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Client mode setup: a program on the client host opens LINK (`O_NOCTTY`, made raw \
         with `cfmakeraw` before any byte) and reaches the device end to end: LINK → client \
         → TCP on 127.0.0.1 → a modemd line (`hangup=0`) → the device PTY, on whose master \
         the bench echoes or streams. Clients: `modemd -l LINK -n socket://` to a raw line, \
         `modemd -l LINK -n rfc2217://` to an `rfc2217=on` line (both connect when LINK is \
         opened and disconnect at its last close), and `socat PTY,link=LINK,raw,echo=0 \
         TCP:127.0.0.1:PORT` to a raw line, connected from its start, as people use it today \
         (no `nodelay`). Each client has its own line and device, all up at once, measured \
         in turn. LINK is opened once per measurement, and, but for the opens, timing starts \
         after its first echoed byte; after each close modemd's clients must have \
         disconnected (the line let the device go) before the next open. LINK open → first \
         byte: open, raw, 1 byte out, its echo back (modemd: the connect, for rfc2217 the \
         COM-PORT agreement and settings, and the line opening the device; socat: the byte \
         alone). After gaps: each round trip after a quiet 0–50 ms, the phases of \
         a 50 ms timer visited evenly. Bulk: program→device then device→program, every byte checked. CPU: the \
         client process's, all threads (scheduler run time, ns, exact where `utime`/`stime` \
         count 10 ms ticks); wake-ups: the context switches of its threads. LINK closed: \
         before the round's first open (modemd's clients waiting for one, socat connected); \
         open and quiet: after one round trip, nothing passing; each for {:.1} s. Memory: \
         the client's `VmRSS`/`VmHWM` from `/proc/PID/status`.\n",
        idle.as_secs_f64()
    );
    out += &res.client_table(kinds);
    out
}

fn main() {
    let started = Instant::now();
    let plan = Plan::from_env();
    watchdog(plan.budget);
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        servers::kill_all();
        hook(info);
    }));
    let tools = Tools::discover();
    for n in &tools.notes {
        eprintln!("compare: {n}");
    }
    let (_dma, dma_note) = hold_dma_latency();
    eprintln!("compare: cpu_dma_latency {dma_note}");
    eprintln!("compare: {}", plan.describe());
    let kinds = tools.available(&Kind::ALL);
    let telnet_kinds = tools.available(&Kind::TELNET);
    let data = common::random_bytes(plan.bulk, 7);
    let mut res = Results::new(kinds.clone(), plan.rounds);

    // One device per server for the single-session figures, two pools reused by one server
    // at a time for the 32-session and many-port figures (echoing all along), and one
    // lagging device, also one server at a time, for the disconnect table; no pools for
    // client mode's table alone.
    let pools = if plan.client_only { 0 } else { 1 };
    let mains: Vec<Device> = kinds.iter().map(|_| Device::new()).collect();
    let pool: Vec<Device> = (0..plan.sessions * pools).map(|_| Device::new()).collect();
    let wide: Vec<Device> = (0..plan.ports * pools).map(|_| Device::new()).collect();
    let lagging = Device::new();
    let tels: Vec<Device> = telnet_kinds.iter().map(|_| Device::new()).collect();
    let tel_refs: Vec<&Device> = tels.iter().collect();
    let tel_of = |k: Kind| &tels[telnet_kinds.iter().position(|&x| x == k).expect("kind")];
    let pool_refs: Vec<&Device> = pool.iter().collect();
    let wide_refs: Vec<&Device> = wide.iter().collect();
    let _pool_echo = device::Echo::start(&pool_refs);
    let _wide_echo = device::Echo::start(&wide_refs);
    let dev_of = |k: Kind| &mains[kinds.iter().position(|&x| x == k).expect("kind")];
    let client_kinds = tools.available(&Kind::CLIENTS);
    let client_devs: Vec<Device> = client_kinds.iter().map(|_| Device::new()).collect();

    let mut rounds_done = 0;
    let mut longest = Duration::ZERO;
    for round in 0..plan.rounds {
        let t_round = Instant::now();
        if started.elapsed() + longest + longest / 4 > plan.budget {
            res.note(format!(
                "stopped after {round} rounds to stay within {:?}",
                plan.budget
            ));
            break;
        }
        let mut order = kinds.clone();
        order.rotate_left(round % kinds.len());
        let mut shown = if plan.client_only {
            client_kinds.clone()
        } else {
            kinds.clone()
        };
        let n = shown.len().max(1);
        shown.rotate_left(round % n);
        eprintln!(
            "compare: round {}/{} ({})",
            round + 1,
            plan.rounds,
            shown
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", ")
        );

        client_round(
            &mut res,
            &plan,
            &tools,
            &data,
            round,
            &client_kinds,
            &client_devs,
        );
        if plan.client_only {
            round_done(round, t_round, &mut rounds_done, &mut longest);
            continue;
        }

        // Single-port instances of every server, all up at once, measured in turn.
        let mut running: Vec<(Kind, Server)> = Vec::new();
        each(&mut res, &order, "start", |_, k| {
            running.push((k, Server::start(k, &tools, &[dev_of(k)], Hangup::Free)?));
            Ok(())
        });
        let order: Vec<Kind> = order
            .into_iter()
            .filter(|k| running.iter().any(|(r, _)| r == k))
            .collect();
        let server = |k: Kind| &running.iter().find(|(r, _)| *r == k).expect("running").1;
        thread::sleep(Duration::from_millis(100));
        each(&mut res, &order, "idle memory", |res, k| {
            let m = server(k).memory();
            res.set("rss_idle", k, round, m.rss_kib as f64);
            res.set("pss_idle", k, round, m.pss_kib as f64);
            Ok(())
        });
        let main_refs: Vec<&Device> = mains.iter().collect();
        with_echo(&main_refs, || {
            each(&mut res, &order, "1 session", |res, k| {
                let s = server(k);
                let m = measure::sessions_memory(s, &[dev_of(k)], &s.addrs(), &[64])?;
                res.set("rss_1", k, round, m[0].rss_kib as f64);
                res.set("pss_1", k, round, m[0].pss_kib as f64);
                Ok(())
            });
            each(&mut res, &order, "round trips", |res, k| {
                let [one, big] = measure::latency(
                    server(k),
                    dev_of(k),
                    plan.warmup,
                    plan.rtt_iters,
                    plan.rtt_cap,
                )?;
                res.set("rtt1_p50", k, round, one.p50);
                res.set("rtt1_p99", k, round, one.p99);
                res.set("rtt1_p999", k, round, one.p999);
                res.set("rtt64_p50", k, round, big.p50);
                res.set("rtt64_p99", k, round, big.p99);
                res.set("rtt64_p999", k, round, big.p999);
                let fewest = one.samples.min(big.samples);
                if fewest < plan.rtt_iters {
                    res.note_min(
                        &format!(
                            "{}: round trips capped at {:.1} s per size",
                            k.name(),
                            plan.rtt_cap.as_secs_f64()
                        ),
                        "fewest samples per size",
                        fewest,
                    );
                }
                Ok(())
            });
            each(&mut res, &order, "connects", |res, k| {
                let (p50, p99, failed) = measure::connects(server(k), dev_of(k), plan.connects)?;
                res.set("conn_p50", k, round, p50);
                res.set("conn_p99", k, round, p99);
                if failed > 0 {
                    res.note(format!(
                        "{}: {failed} connects failed in round {}",
                        k.name(),
                        round + 1
                    ));
                }
                Ok(())
            });
        });
        each(&mut res, &order, "bulk", |res, k| {
            let b = measure::bulk(server(k), dev_of(k), &data, plan.bulk_cap)?;
            for (i, (t, c)) in [("up", "cpu_up"), ("down", "cpu_down"), ("both", "cpu_both")]
                .into_iter()
                .enumerate()
            {
                res.set(t, k, round, b[i].mib_s);
                res.set(c, k, round, b[i].cpu_us_per_mib);
                if b[i].capped {
                    res.note(format!(
                        "{}: bulk {t} capped at {:.1} s (rate over what moved, all of it checked)",
                        k.name(),
                        plan.bulk_cap.as_secs_f64()
                    ));
                }
            }
            Ok(())
        });
        drop(running);
        for d in &mains {
            d.flush();
        }

        // The RFC 2217 table: modemd raw, modemd rfc2217=on and ser2net telnet(rfc2217), all
        // up at once on devices of their own, measured in turn.
        let mut order_t = telnet_kinds.clone();
        order_t.rotate_left(round % telnet_kinds.len());
        let mut tel_running: Vec<(Kind, Server)> = Vec::new();
        each(&mut res, &order_t, "rfc2217 start", |_, k| {
            tel_running.push((k, Server::start(k, &tools, &[tel_of(k)], Hangup::Free)?));
            Ok(())
        });
        order_t.retain(|k| tel_running.iter().any(|(r, _)| r == k));
        let tel_server = |k: Kind| {
            &tel_running
                .iter()
                .find(|(r, _)| *r == k)
                .expect("running")
                .1
        };
        with_echo(&tel_refs, || {
            each(&mut res, &order_t, "rfc2217 round trips", |res, k| {
                let l = telnet::latency(
                    tel_server(k),
                    tel_of(k),
                    plan.warmup,
                    plan.rtt_iters,
                    plan.rtt_cap,
                )?;
                res.set("tel_rtt1_p50", k, round, l.p50);
                res.set("tel_rtt1_p99", k, round, l.p99);
                if l.samples < plan.rtt_iters {
                    res.note_min(
                        &format!(
                            "{}: RFC 2217 table round trips capped at {:.1} s",
                            k.name(),
                            plan.rtt_cap.as_secs_f64()
                        ),
                        "fewest samples",
                        l.samples,
                    );
                }
                Ok(())
            });
        });
        each(&mut res, &order_t, "rfc2217 bulk", |res, k| {
            let b = telnet::bulk(tel_server(k), tel_of(k), &data, plan.bulk_cap)?;
            for (i, (t, c)) in [("tel_up", "tel_cpu_up"), ("tel_down", "tel_cpu_down")]
                .into_iter()
                .enumerate()
            {
                res.set(t, k, round, b[i].mib_s);
                res.set(c, k, round, b[i].cpu_us_per_mib);
                if b[i].capped {
                    res.note(format!(
                        "{}: RFC 2217 table bulk {} capped at {:.1} s (rate over what moved, \
                         all of it checked)",
                        k.name(),
                        &t[4..],
                        plan.bulk_cap.as_secs_f64()
                    ));
                }
            }
            Ok(())
        });
        drop(tel_running);
        tels.iter().for_each(Device::flush);

        // 32 sessions on 32 ports, then many ports, one server at a time.
        each(&mut res, &order, "32 sessions", |res, k| {
            let s = Server::start(k, &tools, &pool_refs, Hangup::Free)?;
            let m = measure::sessions_memory(&s, &pool_refs, &s.addrs(), &[64, 16 * 1024]);
            drop(s);
            pool.iter().for_each(Device::flush);
            let m = m?;
            res.set("rss_32", k, round, m[0].rss_kib as f64);
            res.set("pss_32", k, round, m[0].pss_kib as f64);
            res.set("rss_32_full", k, round, m[1].rss_kib as f64);
            res.set("pss_32_full", k, round, m[1].pss_kib as f64);
            Ok(())
        });
        each(&mut res, &order, "many ports", |res, k| {
            let s = Server::start(k, &tools, &wide_refs, Hangup::Free)?;
            let r = measure::many(&s, plan.many_warmup, plan.many_time);
            drop(s);
            wide.iter().for_each(Device::flush);
            let (rate, m, failed) = r?;
            res.set("many_rt", k, round, rate);
            res.set("many_rss", k, round, m.rss_kib as f64);
            res.set("many_pss", k, round, m.pss_kib as f64);
            if failed > 0 {
                res.note(format!(
                    "{}: {failed} of {} clients got no session in round {}",
                    k.name(),
                    plan.ports,
                    round + 1
                ));
            }
            Ok(())
        });
        // modemd with its default hold here: this table is about what the hold is for.
        each(&mut res, &order, "reconnects", |res, k| {
            let s = Server::start(k, &tools, &[&lagging], Hangup::Hold)?;
            let r = measure::reconnects(&s, &lagging, plan.reconnects_per_round(), LAG);
            drop(s);
            lagging.flush();
            res.add_reconnects(k, r?);
            Ok(())
        });
        round_done(round, t_round, &mut rounds_done, &mut longest);
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## {} ({})\n",
        if plan.client_only {
            "modemd's client mode beside socat's PTY"
        } else {
            "modemd vs ser2net, socat and a C poll() relay"
        },
        today()
    );
    let _ = writeln!(out, "- {}", plan.describe());
    let _ = writeln!(
        out,
        "- rounds completed: {rounds_done}; in each, every measurement is taken for every server \
         in turn, the order rotating by one each round; cells: median (min–max) over the \
         rounds, **×ratio** = median of the per-round ratios to {}",
        if plan.client_only {
            "socat's PTY client"
        } else {
            "the C relay (in the RFC 2217 table: modemd raw; in client mode's: socat's PTY)"
        }
    );
    let _ = writeln!(out, "- machine: {}", machine());
    let _ = writeln!(out, "- /dev/cpu_dma_latency: {dma_note}");
    for n in &tools.notes {
        let _ = writeln!(out, "- {n}");
    }
    if plan.client_only {
        out += "\n";
    } else {
        out += &servers_report(&res, &telnet_kinds);
    }
    out += &client_report(&res, &client_kinds, plan.idle_time);
    if !plan.client_only {
        out += &res.goals();
        out += "\n";
        out += &res.per_round();
    }
    if !res.notes.is_empty() {
        out += "\nNotes:\n\n";
        for n in &res.notes {
            let _ = writeln!(out, "- {n}");
        }
    }
    let _ = writeln!(
        out,
        "\nWall time of the run: {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    println!("\n{out}");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/results");
    // Client mode's table alone is kept apart: the servers' figures stay those of a full run.
    let stem = if plan.client_only {
        "compare-client"
    } else {
        "compare"
    };
    let names = if plan.quick {
        vec![format!("{stem}-quick.md")]
    } else {
        vec![
            format!("{stem}-{}.md", today()),
            format!("{stem}-latest.md"),
        ]
    };
    if fs::create_dir_all(&dir).is_ok() {
        for n in names {
            let p = dir.join(n);
            match fs::write(&p, &out) {
                Ok(()) => eprintln!("compare: written to {}", p.display()),
                Err(e) => eprintln!("compare: cannot write {}: {e}", p.display()),
            }
        }
    }
}
