//! Latency histograms and process figures read from `/proc` (CPU time,
//! resident memory, open-files limit).

use crate::report::Report;
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Linux `USER_HZ`: the unit of the CPU times in `/proc/*/stat` (100 on every
/// mainstream architecture).
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// A latency histogram in microseconds (1 µs to 1 h, 3 significant digits).
#[derive(Debug, Clone)]
pub(crate) struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"))
    }
}

impl Latency {
    /// Records one duration.
    pub(crate) fn record(&mut self, d: Duration) {
        self.record_us(d.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Records one value in microseconds (clamped into range).
    pub(crate) fn record_us(&mut self, us: u64) {
        self.0.saturating_record(us.max(1));
    }

    /// Adds all values of `other`.
    pub(crate) fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so this cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Adds `<prefix>_p50_ms`, `_p99_ms`, `_max_ms` (and `_p999_ms` when
    /// `with_p999`) to the report; nothing when empty.
    pub(crate) fn report(&self, r: &mut Report, prefix: &str, with_p999: bool) {
        if self.0.is_empty() {
            r.str(&format!("{prefix}_ms"), "no samples");
            return;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        r.float(
            &format!("{prefix}_p50_ms"),
            ms(self.0.value_at_quantile(0.50)),
        );
        r.float(
            &format!("{prefix}_p99_ms"),
            ms(self.0.value_at_quantile(0.99)),
        );
        if with_p999 {
            r.float(
                &format!("{prefix}_p999_ms"),
                ms(self.0.value_at_quantile(0.999)),
            );
        }
        r.float(&format!("{prefix}_max_ms"), ms(self.0.max()));
    }
}

/// Numeric fields of `/proc/<pid>/stat` after `(comm)` and `state`: index 0 is field 4 (`ppid`).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(
        rest.split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// User + system CPU seconds of a process (`pid` or `"self"`), including its
/// waited-for children when `with_children`.
pub(crate) fn cpu_secs(pid: &str, with_children: bool) -> Option<f64> {
    let f = stat_fields(pid)?;
    // Fields 14..=17 (utime, stime, cutime, cstime) are indexes 10..=13.
    let mut ticks = f.get(10)? + f.get(11)?;
    if with_children {
        ticks += f.get(12)? + f.get(13)?;
    }
    Some(ticks as f64 / CLOCK_TICKS_PER_SEC)
}

/// Busy CPU seconds of the whole machine (all cores; user, nice, system, irq,
/// softirq; neither idle, iowait nor steal), from `/proc/stat`.
pub(crate) fn machine_busy_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?;
    Some(busy as f64 / CLOCK_TICKS_PER_SEC)
}

/// `VmRSS` of a process in KiB.
pub(crate) fn rss_kib(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Soft open-files limit of a process.
pub(crate) fn open_files_limit(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Fails early when `sockets` would not fit under this process's open-files limit.
pub(crate) fn check_fd_budget(sockets: u64) -> anyhow::Result<()> {
    const RESERVE: u64 = 64;
    if let Some(limit) = open_files_limit("self")
        && sockets + RESERVE > limit
    {
        anyhow::bail!(
            "{sockets} sockets do not fit the open-files limit of {limit} per process \
             (use `idle --procs`, `connect --close-each` or fewer connections)"
        );
    }
    Ok(())
}

/// Warns when the server cannot hold `sockets` connections under its open-files limit.
pub(crate) fn warn_server_fd_budget(server_pid: Option<u32>, sockets: u64) {
    if let Some(limit) = server_pid.and_then(|p| open_files_limit(&p.to_string()))
        && sockets + 16 > limit
    {
        eprintln!(
            "warning: the server's open-files limit is {limit}; {sockets} connections will not fit"
        );
    }
}

/// CPU time of this process and of the server over a measured window.
pub(crate) struct CpuWindow {
    started: Instant,
    client: f64,
    server_pid: Option<String>,
    server: Option<f64>,
    machine: Option<f64>,
}

impl CpuWindow {
    /// Starts a window now. The client figure includes waited-for children.
    pub(crate) fn start(server_pid: Option<u32>) -> CpuWindow {
        let server_pid = server_pid.map(|p| p.to_string());
        CpuWindow {
            started: Instant::now(),
            client: cpu_secs("self", true).unwrap_or(0.0),
            server: server_pid.as_deref().and_then(|p| cpu_secs(p, false)),
            server_pid,
            machine: machine_busy_secs(),
        }
    }

    /// Seconds since the window started.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Takes the window's figures now.
    pub(crate) fn sample(&self) -> CpuSample {
        let server = match (&self.server_pid, self.server) {
            (Some(pid), Some(before)) => cpu_secs(pid, false).map(|now| now - before),
            _ => None,
        };
        CpuSample {
            wall: self.elapsed().as_secs_f64().max(1e-9),
            client: cpu_secs("self", true).unwrap_or(0.0) - self.client,
            server,
            machine: self
                .machine
                .and_then(|before| machine_busy_secs().map(|now| now - before)),
        }
    }
}

/// Wall and CPU seconds of a finished window.
pub(crate) struct CpuSample {
    /// Wall-clock seconds.
    pub(crate) wall: f64,
    /// CPU seconds of this process and its waited-for children.
    pub(crate) client: f64,
    /// CPU seconds of the server, when its pid is known.
    pub(crate) server: Option<f64>,
    /// Busy CPU seconds of the whole machine.
    pub(crate) machine: Option<f64>,
}

impl CpuSample {
    /// Adds another window's figures (e.g. the next round's): a figure
    /// stays known only while both sides know it.
    pub(crate) fn add(&mut self, other: &CpuSample) {
        self.wall += other.wall;
        self.client += other.client;
        self.server = self.server.zip(other.server).map(|(a, b)| a + b);
        self.machine = self.machine.zip(other.machine).map(|(a, b)| a + b);
    }

    /// Adds `<prefix>wall_s`, client and server CPU seconds and their share of
    /// one core (`*_cpu_pct`). `extra_client` is CPU spent by client processes
    /// this one has not waited for (running workers).
    pub(crate) fn report(&self, r: &mut Report, prefix: &str, extra_client: f64) {
        let client = self.client + extra_client;
        r.float(&format!("{prefix}wall_s"), self.wall);
        r.float(&format!("{prefix}client_cpu_s"), client);
        r.float(
            &format!("{prefix}client_cpu_pct"),
            100.0 * client / self.wall,
        );
        match self.server {
            Some(s) => {
                r.float(&format!("{prefix}server_cpu_s"), s);
                r.float(&format!("{prefix}server_cpu_pct"), 100.0 * s / self.wall);
            }
            None => r.str(&format!("{prefix}server_cpu_s"), "n/a (no --server-pid)"),
        }
        // Whatever else ran on the machine meanwhile (builds, other tests):
        // a large figure means the run competed for the cores.
        if let Some(m) = self.machine {
            let other = m - client - self.server.unwrap_or(0.0);
            r.float(&format!("{prefix}other_cpu_s"), other.max(0.0));
            r.float(
                &format!("{prefix}other_cpu_pct"),
                100.0 * other.max(0.0) / self.wall,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_proc_figures() {
        assert!(cpu_secs("self", true).is_some());
        assert!(rss_kib("self").unwrap() > 0);
        assert!(open_files_limit("self").unwrap() > 0);
        assert!(machine_busy_secs().unwrap() > 0.0);
    }

    #[test]
    fn histogram_quantiles() {
        let mut h = Latency::default();
        for us in 1..=1000 {
            h.record_us(us);
        }
        let mut r = Report::new("t");
        h.report(&mut r, "x", false);
        assert!(r.to_json().contains("\"x_p50_ms\":0.5"));
    }
}
