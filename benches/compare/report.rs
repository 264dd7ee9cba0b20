//! Figures per metric, server and round; medians with min–max, ratios to the C relay of the
//! same round, the Markdown tables and the goal check.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::measure::Reconnects;
use crate::servers::Kind;

/// One row of a table.
pub struct Metric {
    pub key: &'static str,
    pub label: &'static str,
    /// Decimals to print.
    pub decimals: usize,
}

/// The tables, in order: a title and its rows.
pub const GROUPS: &[(&str, &[Metric])] = &[
    (
        "Round-trip latency, µs (lower is better)",
        &[
            m("rtt1_p50", "1 B p50", 1),
            m("rtt1_p99", "1 B p99", 1),
            m("rtt1_p999", "1 B p99.9", 1),
            m("rtt64_p50", "64 B p50", 1),
            m("rtt64_p99", "64 B p99", 1),
            m("rtt64_p999", "64 B p99.9", 1),
        ],
    ),
    (
        "Throughput, MiB/s (higher is better), and server CPU, µs per MiB moved (lower is better)",
        &[
            m("up", "client→device MiB/s", 0),
            m("down", "device→client MiB/s", 0),
            m("both", "both at once MiB/s (sum)", 0),
            m("cpu_up", "CPU client→device µs/MiB", 0),
            m("cpu_down", "CPU device→client µs/MiB", 0),
            m("cpu_both", "CPU both at once µs/MiB", 0),
        ],
    ),
    (
        "Memory of all server processes, KiB (lower is better)",
        &[
            m("rss_idle", "RSS idle (1 port)", 0),
            m("pss_idle", "PSS idle (1 port)", 0),
            m("rss_1", "RSS 1 session", 0),
            m("pss_1", "PSS 1 session", 0),
            m("rss_32", "RSS 32 sessions (32 ports)", 0),
            m("pss_32", "PSS 32 sessions (32 ports)", 0),
            m("rss_32_full", "RSS 32 sessions, buffers filled", 0),
            m("pss_32_full", "PSS 32 sessions, buffers filled", 0),
        ],
    ),
    (
        "Connect → first echoed byte, µs (lower is better)",
        &[m("conn_p50", "p50", 0), m("conn_p99", "p99", 0)],
    ),
    (
        "Many ports, one active client each (round trips: higher is better)",
        &[
            m("many_rt", "aggregate round trips/s", 0),
            m("many_rss", "RSS KiB", 0),
            m("many_pss", "PSS KiB", 0),
        ],
    ),
];

/// The RFC 2217 table's rows (keys of their own: the clients there are Telnet clients).
pub const TELNET_METRICS: &[Metric] = &[
    m("tel_rtt1_p50", "1 B round trip p50, µs", 1),
    m("tel_rtt1_p99", "1 B round trip p99, µs", 1),
    m("tel_up", "client→device MiB/s", 0),
    m("tel_down", "device→client MiB/s", 0),
    m("tel_cpu_up", "CPU client→device µs/MiB", 0),
    m("tel_cpu_down", "CPU device→client µs/MiB", 0),
];

/// Client mode's table: a program on LINK, end to end to the device; CPU and memory are the
/// client process's.
pub const CLIENT_METRICS: &[Metric] = &[
    m("cl_open_p50", "LINK open → first echoed byte p50, µs", 0),
    m("cl_open_p99", "LINK open → first echoed byte p99, µs", 0),
    m("cl_rtt1_p50", "1 B round trip p50, µs", 1),
    m("cl_rtt1_p99", "1 B round trip p99, µs", 1),
    m("cl_rtt1_p999", "1 B round trip p99.9, µs", 1),
    m("cl_rtt1_max", "1 B round trip max, µs", 0),
    m(
        "cl_gap_p50",
        "1 B round trip after a 0–50 ms gap p50, µs",
        1,
    ),
    m(
        "cl_gap_max",
        "1 B round trip after a 0–50 ms gap max, µs",
        0,
    ),
    m("cl_up", "program→device MiB/s", 0),
    m("cl_down", "device→program MiB/s", 0),
    m("cl_cpu_up", "client CPU program→device µs/MiB", 0),
    m("cl_cpu_down", "client CPU device→program µs/MiB", 0),
    m("cl_closed_cpu", "client CPU, LINK closed, µs/s", 1),
    m("cl_closed_wake", "client wake-ups, LINK closed, per s", 1),
    m("cl_idle_cpu", "client CPU, LINK open and quiet, µs/s", 1),
    m(
        "cl_idle_wake",
        "client wake-ups, LINK open and quiet, per s",
        1,
    ),
    m("cl_rss_closed", "client VmRSS, LINK closed, KiB", 0),
    m("cl_rss_idle", "client VmRSS, LINK open and quiet, KiB", 0),
    m("cl_hwm_idle", "client VmHWM, LINK open and quiet, KiB", 0),
    m("cl_rss_bulk", "client VmRSS after the bulk runs, KiB", 0),
    m("cl_hwm_bulk", "client VmHWM after the bulk runs, KiB", 0),
];

const fn m(key: &'static str, label: &'static str, decimals: usize) -> Metric {
    Metric {
        key,
        label,
        decimals,
    }
}

/// Every figure of the run.
pub struct Results {
    pub kinds: Vec<Kind>,
    pub rounds: usize,
    values: BTreeMap<(&'static str, Kind), Vec<Option<f64>>>,
    /// The disconnect / reconnect cycles of every round, summed per server.
    reconnects: BTreeMap<Kind, Reconnects>,
    /// Remarks printed under the tables (failures, capped runs).
    pub notes: Vec<String>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median, min and max of some figures.
#[derive(Clone, Copy)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        let (min, max) = v
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        Some(Spread {
            median: median(&mut v),
            min,
            max,
        })
    }
}

/// One figure of `v` (ms, one decimal), or `n/a` if there is none.
fn spread_cell(v: &[f64], pick: fn(&Spread) -> f64) -> String {
    Spread::of(v.to_vec()).map_or("n/a".to_owned(), |s| format!("{:.1}", pick(&s)))
}

impl Results {
    pub fn new(kinds: Vec<Kind>, rounds: usize) -> Results {
        Results {
            kinds,
            rounds,
            values: BTreeMap::new(),
            reconnects: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    pub fn set(&mut self, key: &'static str, kind: Kind, round: usize, v: f64) {
        let slot = self
            .values
            .entry((key, kind))
            .or_insert_with(|| vec![None; self.rounds]);
        slot[round] = Some(v);
    }

    pub fn note(&mut self, text: String) {
        if !self.notes.contains(&text) {
            self.notes.push(text);
        }
    }

    /// A note `"{what} ({label} N)"` keeping the smallest N seen.
    pub fn note_min(&mut self, what: &str, label: &str, n: usize) {
        let head = format!("{what} ({label} ");
        let old = self.notes.iter().position(|t| t.starts_with(&head));
        let keep = old
            .and_then(|i| {
                self.notes[i][head.len()..]
                    .trim_end_matches(')')
                    .parse::<usize>()
                    .ok()
            })
            .map_or(n, |m| m.min(n));
        let text = format!("{head}{keep})");
        match old {
            Some(i) => self.notes[i] = text,
            None => self.notes.push(text),
        }
    }

    /// The figures of `kind` over the rounds.
    pub fn absolute(&self, key: &str, kind: Kind) -> Option<Spread> {
        let v = self
            .values
            .iter()
            .find(|((k, s), _)| *k == key && *s == kind)?
            .1;
        Spread::of(v.iter().flatten().copied().collect())
    }

    /// The ratios of `kind` to the C relay, round by round.
    pub fn ratio(&self, key: &str, kind: Kind) -> Option<Spread> {
        self.ratio_to(key, kind, Kind::Floor)
    }

    /// The ratios of `kind` to `base`, round by round.
    pub fn ratio_to(&self, key: &str, kind: Kind, base: Kind) -> Option<Spread> {
        let get = |k: Kind| {
            self.values
                .iter()
                .find(|((kk, s), _)| *kk == key && *s == k)
                .map(|(_, v)| v.clone())
        };
        let (a, floor) = (get(kind)?, get(base)?);
        Spread::of(
            a.iter()
                .zip(&floor)
                .filter_map(|(a, f)| match (a, f) {
                    (Some(a), Some(f)) if *f > 0.0 => Some(a / f),
                    _ => None,
                })
                .collect(),
        )
    }

    /// A table's title and header row, one column per server, Markdown.
    fn table_head(&self, title: &str) -> String {
        table_head(title, &self.kinds)
    }

    /// One table of `metrics` over `kinds`, ratios to `base` (none in its own column).
    fn table(&self, title: &str, metrics: &[Metric], kinds: &[Kind], base: Kind) -> String {
        let mut out = table_head(title, kinds);
        for mtr in metrics {
            let _ = write!(out, "| {} |", mtr.label);
            for &k in kinds {
                let cell = match self.absolute(mtr.key, k) {
                    None => "n/a".to_owned(),
                    Some(s) => {
                        let d = mtr.decimals;
                        let mut c = format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max);
                        if k != base {
                            if let Some(r) = self.ratio_to(mtr.key, k, base) {
                                let _ = write!(c, " **×{:.2}**", r.median);
                            }
                        }
                        c
                    }
                };
                let _ = write!(out, " {cell} |");
            }
            out += "\n";
        }
        out + "\n"
    }

    /// The RFC 2217 table over `kinds` (modemd's raw line first), ratios to modemd's raw line.
    pub fn telnet_table(&self, kinds: &[Kind]) -> String {
        self.table(
            "RFC 2217: Telnet lines beside modemd's raw line (round trips: lower is better; \
             MiB/s: higher; CPU: lower; **×ratio** to modemd raw)",
            TELNET_METRICS,
            kinds,
            Kind::Modemd,
        )
    }

    /// Client mode's table over `kinds`, ratios to socat's PTY client.
    pub fn client_table(&self, kinds: &[Kind]) -> String {
        self.table(
            "Client mode: a program on LINK, through the client and a modemd line to the \
             device (µs, CPU, memory: lower is better; MiB/s: higher; **×ratio** to socat PTY)",
            CLIENT_METRICS,
            kinds,
            Kind::ClientSocat,
        )
    }

    /// Adds a round's disconnect / reconnect cycles of `kind`.
    pub fn add_reconnects(&mut self, kind: Kind, r: Reconnects) {
        self.reconnects.entry(kind).or_default().add(r);
    }

    /// The disconnect / reconnect table, Markdown: counts over all cycles of all rounds (no
    /// ratios: the C relay is no floor for what a session leaves behind), and what each server
    /// does at the end of a session.
    pub fn reconnect_table(&self, lag_ms: u64) -> String {
        let mut out = self.table_head(&format!(
            "Disconnect / reconnect, device echoing {lag_ms} ms late (stale and busy: lower \
             is better)"
        ));
        type Cell = fn(&Reconnects) -> String;
        let rows: [(&str, Cell); 5] = [
            ("cycles", |r| r.cycles.to_string()),
            ("stale bytes (cycles with any)", |r| {
                format!("{} ({})", r.stale_bytes, r.stale_cycles)
            }),
            (
                "busy replies: refused or closed unserved (read `busy`)",
                |r| format!("{} ({})", r.unserved, r.busy),
            ),
            ("reconnect p50, ms", |r| {
                spread_cell(&r.times_ms, |s| s.median)
            }),
            ("reconnect max, ms", |r| spread_cell(&r.times_ms, |s| s.max)),
        ];
        for (label, cell) in rows {
            let _ = write!(out, "| {label} |");
            for k in &self.kinds {
                let c = self.reconnects.get(k).map_or("n/a".to_owned(), cell);
                let _ = write!(out, " {c} |");
            }
            out += "\n";
        }
        out += "\n";
        for k in &self.kinds {
            let _ = writeln!(out, "- {}: {}", k.name(), k.after_session());
            if let Some(t) = self.reconnects.get(k).and_then(|r| r.refusal.as_ref()) {
                let _ = writeln!(out, "- {}: a refused client read `{t}`", k.name());
            }
        }
        out + "\n"
    }

    /// Every table but the RFC 2217 one, Markdown.
    pub fn tables(&self) -> String {
        GROUPS
            .iter()
            .map(|(title, metrics)| self.table(title, metrics, &self.kinds, Kind::Floor))
            .collect()
    }
}

/// A table's title and header row, one column per server of `kinds`, Markdown.
fn table_head(title: &str, kinds: &[Kind]) -> String {
    let mut out = format!("### {title}\n\n| metric |");
    for k in kinds {
        let _ = write!(out, " {} |", k.name());
    }
    out += "\n|---|";
    for _ in kinds {
        out += "---:|";
    }
    out + "\n"
}

/// A goal for modemd: on the ratio to the C relay or on an absolute figure.
struct Goal {
    what: &'static str,
    key: &'static str,
    ratio: bool,
    /// `true`: the figure must be at most `limit`; `false`: at least.
    at_most: bool,
    limit: f64,
    target: &'static str,
}

const GOALS: &[Goal] = &[
    goal("1 B RTT p50", "rtt1_p50", true, true, 1.05, "≤ 1.05×"),
    goal("1 B RTT p99", "rtt1_p99", true, true, 1.15, "≤ 1.15×"),
    goal("throughput client→device", "up", true, false, 1.0, "≥ 1.0×"),
    goal(
        "throughput device→client",
        "down",
        true,
        false,
        1.0,
        "≥ 1.0×",
    ),
    goal(
        "throughput both at once",
        "both",
        true,
        false,
        1.0,
        "≥ 1.0×",
    ),
    goal(
        "CPU per MiB client→device",
        "cpu_up",
        true,
        true,
        1.05,
        "≤ 1.05×",
    ),
    goal(
        "CPU per MiB device→client",
        "cpu_down",
        true,
        true,
        1.05,
        "≤ 1.05×",
    ),
    goal(
        "CPU per MiB both at once",
        "cpu_both",
        true,
        true,
        1.05,
        "≤ 1.05×",
    ),
    goal(
        "RSS, 32 sessions",
        "rss_32",
        false,
        true,
        1024.0,
        "≤ 1024 KiB",
    ),
    goal(
        "PSS, 32 sessions",
        "pss_32",
        false,
        true,
        614.4,
        "≤ 614 KiB",
    ),
    goal(
        "connect → first byte p50",
        "conn_p50",
        false,
        true,
        100.0,
        "≤ 100 µs",
    ),
    goal(
        "many ports: round trips/s",
        "many_rt",
        true,
        false,
        0.95,
        "≥ 0.95×",
    ),
];

const fn goal(
    what: &'static str,
    key: &'static str,
    ratio: bool,
    at_most: bool,
    limit: f64,
    target: &'static str,
) -> Goal {
    Goal {
        what,
        key,
        ratio,
        at_most,
        limit,
        target,
    }
}

impl Results {
    /// modemd against the goals (medians of the rounds), Markdown.
    pub fn goals(&self) -> String {
        let mut out = String::from(
            "### modemd against the goals (median of the rounds; ratios are to the C relay of \
             the same round)\n\n| goal | target | modemd | met |\n|---|---|---:|---|\n",
        );
        for g in GOALS {
            let s = if g.ratio {
                self.ratio(g.key, Kind::Modemd)
            } else {
                self.absolute(g.key, Kind::Modemd)
            };
            let (figure, met) = match s {
                None => ("n/a".to_owned(), "n/a"),
                Some(s) => {
                    let ok = if g.at_most {
                        s.median <= g.limit
                    } else {
                        s.median >= g.limit
                    };
                    let fig = if g.ratio {
                        format!("×{:.2} (×{:.2}–×{:.2})", s.median, s.min, s.max)
                    } else {
                        format!("{:.0} ({:.0}–{:.0})", s.median, s.min, s.max)
                    };
                    (fig, if ok { "yes" } else { "**no**" })
                }
            };
            let _ = writeln!(out, "| {} | {} | {figure} | {met} |", g.what, g.target);
        }
        out
    }

    /// The goal metrics round by round, modemd / C relay, so noise shows.
    pub fn per_round(&self) -> String {
        let mut out =
            String::from("### Goal metrics round by round (modemd / C relay)\n\n| metric |");
        for r in 0..self.rounds {
            let _ = write!(out, " round {} |", r + 1);
        }
        out += "\n|---|";
        for _ in 0..self.rounds {
            out += "---:|";
        }
        out += "\n";
        let mut seen = Vec::new();
        for g in GOALS {
            if seen.contains(&g.key) {
                continue;
            }
            seen.push(g.key);
            let Some(mtr) = GROUPS
                .iter()
                .flat_map(|(_, ms)| ms.iter())
                .find(|m| m.key == g.key)
            else {
                continue;
            };
            let get = |k: Kind| self.values.get(&(g.key, k)).cloned().unwrap_or_default();
            let (a, f) = (get(Kind::Modemd), get(Kind::Floor));
            let _ = write!(out, "| {} |", g.what);
            let d = mtr.decimals;
            for r in 0..self.rounds {
                let v = |x: &Vec<Option<f64>>| {
                    x.get(r)
                        .copied()
                        .flatten()
                        .map_or("n/a".to_owned(), |v| format!("{v:.d$}"))
                };
                let _ = write!(out, " {} / {} |", v(&a), v(&f));
            }
            out += "\n";
        }
        out
    }
}
