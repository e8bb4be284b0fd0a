//! Which side saturated: the busy share of the server's and the client's CPU over a run's
//! measured interval, from `/proc/stat`.
//!
//! Busy is everything the CPU did that was not idle: user + nice + system + irq + softirq +
//! steal against idle + iowait (guest time is already inside user and nice). It is the CPU,
//! not the process: on a veth pair the sender's CPU also runs the receiver's kernel RX work
//! (softirq), so the server's CPU carries some of the client's kernel work and the other way
//! round, and anything else running on the machine counts too.

use std::time::Duration;

use anyhow::Context;

/// A side whose CPU was busy at least this share of the measured interval is saturated.
pub(crate) const SATURATED_PERCENT: f64 = 95.0;

/// One CPU's cumulative busy and idle time, in clock ticks, from one `/proc/stat` line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CpuTimes {
    /// user + nice + system + irq + softirq + steal.
    pub(crate) busy: u64,
    /// idle + iowait.
    pub(crate) idle: u64,
}

impl CpuTimes {
    /// Busy share (0–100 %) of the time from `earlier` to `self`; `None` when no tick passed
    /// (or the counters went backwards, as a CPU taken offline and back resets them).
    pub(crate) fn busy_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let busy = self.busy.checked_sub(earlier.busy)?;
        let idle = self.idle.checked_sub(earlier.idle)?;
        let total = busy + idle;
        (total > 0).then(|| busy as f64 * 100.0 / total as f64)
    }
}

/// The times of CPU `cpu` in the text of `/proc/stat` (its `cpuN` line), if it is there.
pub(crate) fn parse_proc_stat(text: &str, cpu: usize) -> Option<CpuTimes> {
    let name = format!("cpu{cpu}");
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name.as_str()))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]; the first eight
    // are there on every kernel since 2.6.11.
    let [user, nice, system, idle, iowait, irq, softirq, steal] = *fields.get(..8)? else {
        return None;
    };
    Some(CpuTimes {
        busy: user + nice + system + irq + softirq + steal,
        idle: idle + iowait,
    })
}

/// The server's and the client's CPU at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CpuSnapshot {
    server: CpuTimes,
    client: CpuTimes,
}

impl CpuSnapshot {
    /// Reads `/proc/stat` for CPUs `server` and `client`.
    pub(crate) fn read((server, client): (usize, usize)) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let times = |cpu| {
            parse_proc_stat(&text, cpu).with_context(|| format!("/proc/stat has no cpu{cpu} line"))
        };
        Ok(Self {
            server: times(server)?,
            client: times(client)?,
        })
    }

    /// The busy shares from `earlier` to `self`, if a tick passed on both CPUs.
    pub(crate) fn busy_since(&self, earlier: &CpuSnapshot) -> Option<CpuBusy> {
        Some(CpuBusy {
            server_percent: self.server.busy_percent_since(&earlier.server)?,
            client_percent: self.client.busy_percent_since(&earlier.client)?,
        })
    }
}

/// How busy `cpus` (server, client) are over the next `period`: with nothing of ours running,
/// the other work on the machine, which every run's busy share includes too.
pub(crate) fn busy_over(cpus: (usize, usize), period: Duration) -> anyhow::Result<Option<CpuBusy>> {
    let before = CpuSnapshot::read(cpus)?;
    std::thread::sleep(period);
    Ok(CpuSnapshot::read(cpus)?.busy_since(&before))
}

/// How busy the server's and the client's CPU were over a run's measured interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CpuBusy {
    /// The server's CPU (host A's side), 0–100 %.
    pub(crate) server_percent: f64,
    /// The client's CPU (host B's side), 0–100 %.
    pub(crate) client_percent: f64,
}

impl CpuBusy {
    /// Which side reached [`SATURATED_PERCENT`].
    pub(crate) fn saturated(&self) -> Saturated {
        let server = self.server_percent >= SATURATED_PERCENT;
        let client = self.client_percent >= SATURATED_PERCENT;
        match (server, client) {
            (true, true) => Saturated::Both,
            (true, false) => Saturated::Server,
            (false, true) => Saturated::Client,
            (false, false) => Saturated::Neither,
        }
    }

    /// `98% / 100%`: server, then client.
    pub(crate) fn cell(&self) -> String {
        format!("{:.0}% / {:.0}%", self.server_percent, self.client_percent)
    }
}

/// Which side's CPU was saturated (busy at least [`SATURATED_PERCENT`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Saturated {
    /// Neither CPU: something else (the link, a lock, waiting on the peer) set the pace.
    Neither,
    /// The server's CPU only.
    Server,
    /// The client's CPU only: the figure may be the client's limit, not the server's.
    Client,
    /// Both CPUs.
    Both,
}

impl Saturated {
    /// The word for the table and the JSON; `pinned` is false where the threads are not
    /// pinned (the frame-rate row), and the sides are then named by their CPUs.
    pub(crate) fn name(self, pinned: bool, (server_cpu, client_cpu): (usize, usize)) -> String {
        match (self, pinned) {
            (Saturated::Neither, _) => "neither".into(),
            (Saturated::Both, _) => "both".into(),
            (Saturated::Server, true) => "server".into(),
            (Saturated::Client, true) => "client".into(),
            (Saturated::Server, false) => format!("CPU {server_cpu}"),
            (Saturated::Client, false) => format!("CPU {client_cpu}"),
        }
    }
}

/// The part of a client's run that it measures, counted from its start: CPU busy is
/// sampled from `skip` after the start to `skip + length` (or the client's exit, if
/// sooner).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MeasuredWindow {
    /// Not measured at the start (a warm-up).
    pub(crate) skip: Duration,
    /// Measured after that.
    pub(crate) length: Duration,
}

/// Takes the two snapshots of a [`MeasuredWindow`] while a client runs: call
/// [`BusyWindow::poll`] often (every few milliseconds) with the time since the client
/// started and whether it has exited.
pub(crate) struct BusyWindow {
    window: MeasuredWindow,
    first: Option<CpuSnapshot>,
    last: Option<CpuSnapshot>,
}

impl BusyWindow {
    /// A window not yet begun.
    pub(crate) fn new(window: MeasuredWindow) -> Self {
        Self {
            window,
            first: None,
            last: None,
        }
    }

    /// Takes a snapshot with `read` when the window begins or ends at `elapsed`; a client
    /// that exits before the window begins leaves it empty.
    pub(crate) fn poll(
        &mut self,
        elapsed: Duration,
        exited: bool,
        read: impl FnOnce() -> anyhow::Result<CpuSnapshot>,
    ) -> anyhow::Result<()> {
        if self.first.is_none() {
            if elapsed >= self.window.skip && !exited {
                self.first = Some(read()?);
            }
        } else if self.last.is_none()
            && (exited || elapsed >= self.window.skip + self.window.length)
        {
            self.last = Some(read()?);
        }
        Ok(())
    }

    /// How long from `elapsed` until the next snapshot is due (zero if overdue; `None`
    /// when both are taken).
    pub(crate) fn due_in(&self, elapsed: Duration) -> Option<Duration> {
        let at = match (self.first, self.last) {
            (None, _) => self.window.skip,
            (Some(_), None) => self.window.skip + self.window.length,
            (Some(_), Some(_)) => return None,
        };
        Some(at.saturating_sub(elapsed))
    }

    /// The busy shares over the window, if both snapshots were taken and a tick passed.
    pub(crate) fn busy(&self) -> Option<CpuBusy> {
        self.last?.busy_since(&self.first?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/stat` of a 2-CPU machine (Linux 6.x: ten fields per CPU).
    const STAT: &str = "cpu  208355 0 41924 3014170 735 0 22278 85 0 0\n\
        cpu0 92737 3 17662 1521292 196 7 11480 49 0 0\n\
        cpu1 115618 0 24261 1492877 539 0 10797 36 0 0\n\
        intr 4064285 0 0 0\nctxt 7245902\nsoftirq 100095945 0 216654\n";

    #[test]
    fn proc_stat_lines_add_up_busy_and_idle() {
        let cpu0 = parse_proc_stat(STAT, 0).expect("cpu0");
        assert_eq!(cpu0.busy, 92737 + 3 + 17662 + 7 + 11480 + 49);
        assert_eq!(cpu0.idle, 1521292 + 196);
        let cpu1 = parse_proc_stat(STAT, 1).expect("cpu1");
        assert_eq!(cpu1.busy, 115618 + 24261 + 10797 + 36);
        assert_eq!(cpu1.idle, 1492877 + 539);
        // The `cpu` total line is not cpu0's, a missing CPU is none, and so is a short or
        // garbled line.
        assert_eq!(parse_proc_stat(STAT, 2), None);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4 5 6 7\n", 0), None);
        assert_eq!(parse_proc_stat("cpu0 1 2 3 4 5 6 7 x 9 10\n", 0), None);
        // Old kernels without guest fields still parse.
        let old = parse_proc_stat("cpu3 10 0 5 80 5 0 5 0\n", 3).expect("cpu3");
        assert_eq!((old.busy, old.idle), (20, 85));
    }

    #[test]
    fn busy_percent_is_the_busy_share_of_the_ticks_between() {
        let before = CpuTimes {
            busy: 100,
            idle: 900,
        };
        let after = CpuTimes {
            busy: 100 + 490,
            idle: 900 + 10,
        };
        assert_eq!(after.busy_percent_since(&before), Some(98.0));
        assert_eq!(before.busy_percent_since(&before), None);
        assert_eq!(before.busy_percent_since(&after), None);
        let snapshot = |server: (u64, u64), client: (u64, u64)| CpuSnapshot {
            server: CpuTimes {
                busy: server.0,
                idle: server.1,
            },
            client: CpuTimes {
                busy: client.0,
                idle: client.1,
            },
        };
        let busy = snapshot((150, 50), (500, 0))
            .busy_since(&snapshot((0, 0), (100, 0)))
            .expect("ticks passed");
        assert_eq!(busy.server_percent, 75.0);
        assert_eq!(busy.client_percent, 100.0);
        assert_eq!(busy.cell(), "75% / 100%");
    }

    #[test]
    fn a_side_is_saturated_from_95_percent() {
        let busy = |server_percent, client_percent| CpuBusy {
            server_percent,
            client_percent,
        };
        assert_eq!(busy(98.0, 100.0).saturated(), Saturated::Both);
        assert_eq!(busy(95.0, 94.9).saturated(), Saturated::Server);
        assert_eq!(busy(60.0, 99.5).saturated(), Saturated::Client);
        assert_eq!(busy(94.9, 0.0).saturated(), Saturated::Neither);
        let cpus = (0, 1);
        assert_eq!(Saturated::Client.name(true, cpus), "client");
        assert_eq!(Saturated::Server.name(true, cpus), "server");
        assert_eq!(Saturated::Client.name(false, cpus), "CPU 1");
        assert_eq!(Saturated::Both.name(false, cpus), "both");
        assert_eq!(Saturated::Neither.name(true, cpus), "neither");
    }

    #[test]
    fn the_window_skips_the_warm_up_and_ends_at_its_length_or_the_exit() {
        let ms = Duration::from_millis;
        let mut tick = 0u64;
        let mut read = || {
            tick += 100;
            Ok(CpuSnapshot {
                server: CpuTimes {
                    busy: tick,
                    idle: tick,
                },
                client: CpuTimes {
                    busy: tick * 3,
                    idle: tick,
                },
            })
        };
        let window = MeasuredWindow {
            skip: ms(1000),
            length: ms(5000),
        };
        let mut w = BusyWindow::new(window);
        assert_eq!(w.due_in(ms(200)), Some(ms(800)));
        w.poll(ms(500), false, &mut read).expect("poll");
        assert_eq!(w.busy(), None);
        w.poll(ms(1010), false, &mut read).expect("poll");
        assert_eq!(w.due_in(ms(1010)), Some(ms(4990)));
        w.poll(ms(3000), false, &mut read).expect("poll");
        assert_eq!(w.busy(), None);
        w.poll(ms(6000), false, &mut read).expect("poll");
        assert_eq!(w.due_in(ms(6000)), None);
        let busy = w.busy().expect("both snapshots");
        assert_eq!((busy.server_percent, busy.client_percent), (50.0, 75.0));
        // Later polls change nothing.
        w.poll(ms(9000), true, &mut read).expect("poll");
        assert_eq!(w.busy(), Some(busy));

        // A client that exits early ends the window there; one that exits before the
        // warm-up is over leaves it empty.
        let mut w = BusyWindow::new(window);
        w.poll(ms(1000), false, &mut read).expect("poll");
        w.poll(ms(2000), true, &mut read).expect("poll");
        assert!(w.busy().is_some());
        let mut w = BusyWindow::new(window);
        w.poll(ms(900), true, &mut read).expect("poll");
        w.poll(ms(1100), true, &mut read).expect("poll");
        assert_eq!(w.busy(), None);
    }
}
