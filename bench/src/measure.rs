//! Running the compared tools as child processes: wall-clock time, exit
//! status, output kept in log files (quoted when a run fails), and, when
//! asked, peak resident memory.
//!
//! Peak memory comes from GNU time (`/usr/bin/time -f %M`), which reports
//! the `ru_maxrss` that `wait4` returns for the child: the kernel's own
//! high-water mark (`VmHWM`) of the process, exact however short-lived the
//! peak. Sampling `/proc/<pid>/status` from outside can miss a peak just
//! before exit, and reading `getrusage` ourselves needs `unsafe` (which the
//! workspace forbids) or another crate for one number.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ferry_testworld::error::{Context, Error, Result};

/// GNU time; `FERRY_BENCH_TIME` overrides the path.
pub fn gnu_time() -> Result<PathBuf> {
    let program = std::env::var_os("FERRY_BENCH_TIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/time"));
    if program.is_file() {
        Ok(program)
    } else {
        Err(Error::new(format!(
            "{} is missing: peak memory is measured with GNU time (install the Debian package `time`, or set FERRY_BENCH_TIME)",
            program.display()
        )))
    }
}

/// One finished run.
#[derive(Clone, Debug)]
pub struct Run {
    pub seconds: f64,
    /// Peak resident memory in KiB (runs measured with [`run_with_peak`]).
    pub peak_kib: Option<u64>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Several runs of the same thing as one: the median time and the
    /// highest peak memory (output of the median run). `None` when empty.
    pub fn summarise(mut runs: Vec<Run>) -> Option<Run> {
        let highest_peak = runs.iter().filter_map(|run| run.peak_kib).max();
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let middle = runs.len() / 2;
        let mut median = runs.into_iter().nth(middle)?;
        median.peak_kib = highest_peak;
        Some(median)
    }

    /// Peak resident memory in MiB (0 when not measured).
    pub fn peak_mebibytes(&self) -> f64 {
        self.peak_kib.unwrap_or(0) as f64 / 1024.0
    }
}

/// Runs `once` up to `rounds` times, stopping early once a round took
/// longer than `quick` (a slow run needs no median to be read, and the
/// whole benchmark should stay short); returns the summary
/// ([`Run::summarise`]) and how many rounds ran.
pub fn repeat_while_quick(
    rounds: usize,
    quick: Duration,
    mut once: impl FnMut(usize) -> Result<Run>,
) -> Result<(Run, usize)> {
    let mut runs = Vec::new();
    for round in 1..=rounds.max(1) {
        let run = once(round)?;
        let slow = run.seconds > quick.as_secs_f64();
        runs.push(run);
        if slow {
            break;
        }
    }
    let count = runs.len();
    let summary = Run::summarise(runs).ok_or_else(|| Error::new("no runs"))?;
    Ok((summary, count))
}

/// Where the runs of one benchmark keep their output.
#[derive(Debug)]
pub struct Logs {
    folder: PathBuf,
}

impl Logs {
    pub fn new(folder: &Path) -> Result<Logs> {
        fs::create_dir_all(folder).context(|| format!("creating {}", folder.display()))?;
        Ok(Logs {
            folder: folder.to_path_buf(),
        })
    }

    fn path(&self, label: &str, extension: &str) -> PathBuf {
        let name: String = label
            .chars()
            .map(|character| {
                if character.is_ascii_alphanumeric() || character == '-' {
                    character
                } else {
                    '-'
                }
            })
            .collect();
        self.folder.join(format!("{name}.{extension}"))
    }

    /// Runs `command` to the end; fails unless it exits 0.
    pub fn run(&self, label: &str, command: &mut Command) -> Result<Run> {
        self.run_with_deadline(label, command, None)?
            .ok_or_else(|| Error::new(format!("{label}: stopped without a deadline")))
    }

    /// Runs `command`; stops it (and returns `None`) when it is still
    /// running after `deadline`. Fails when it exits non-zero.
    pub fn run_with_deadline(
        &self,
        label: &str,
        command: &mut Command,
        deadline: Option<Duration>,
    ) -> Result<Option<Run>> {
        let stdout_path = self.path(label, "stdout");
        let stderr_path = self.path(label, "stderr");
        let stdout =
            File::create(&stdout_path).context(|| format!("creating {}", stdout_path.display()))?;
        let stderr =
            File::create(&stderr_path).context(|| format!("creating {}", stderr_path.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr));
        let started = Instant::now();
        let mut child = command
            .spawn()
            .context(|| format!("{label}: starting {}", describe(command)))?;
        let status: ExitStatus = loop {
            if let Some(status) = child.try_wait().context(|| format!("{label}: waiting"))? {
                break status;
            }
            if deadline.is_some_and(|deadline| started.elapsed() > deadline) {
                // Our own child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let seconds = started.elapsed().as_secs_f64();
        let stdout = fs::read_to_string(&stdout_path).unwrap_or_default();
        let stderr = fs::read_to_string(&stderr_path).unwrap_or_default();
        if !status.success() {
            return Err(Error::new(format!(
                "{label} failed ({status}): {}\n--- last lines of its output ({}) ---\n{}",
                describe(command),
                stderr_path.display(),
                last_lines(&format!("{stdout}{stderr}"), 30)
            )));
        }
        Ok(Some(Run {
            seconds,
            peak_kib: None,
            stdout,
            stderr,
        }))
    }

    /// Runs `command` under GNU time and records its peak resident memory.
    pub fn run_with_peak(&self, label: &str, command: &Command) -> Result<Run> {
        let peak_path = self.path(label, "peak");
        let mut wrapped = Command::new(gnu_time()?);
        wrapped
            .arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&peak_path)
            .arg(command.get_program())
            .args(command.get_args());
        for (name, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(name, value),
                None => wrapped.env_remove(name),
            };
        }
        if let Some(directory) = command.get_current_dir() {
            wrapped.current_dir(directory);
        }
        let mut run = self.run(label, &mut wrapped)?;
        let text = fs::read_to_string(&peak_path)
            .context(|| format!("{label}: reading {}", peak_path.display()))?;
        let peak = text
            .lines()
            .filter_map(|line| line.trim().parse::<u64>().ok())
            .next_back()
            .ok_or_else(|| Error::new(format!("{label}: GNU time wrote no peak memory: {text}")))?;
        run.peak_kib = Some(peak);
        Ok(run)
    }
}

/// A command line for messages.
pub fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for argument in command.get_args() {
        text.push(' ');
        text.push_str(&argument.to_string_lossy());
    }
    text
}

/// The last `count` lines of `text`.
pub fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Reads every file under `root` once, so the first tool timed does not
/// pay for a cold page cache that the second one then enjoys.
pub fn warm_page_cache(root: &Path) -> Result<u64> {
    let mut bytes = 0;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = fs::read_dir(&folder).context(|| format!("listing {}", folder.display()))?;
        for entry in entries {
            let entry = entry.context(|| format!("listing {}", folder.display()))?;
            let kind = entry
                .file_type()
                .context(|| format!("reading {}", entry.path().display()))?;
            if kind.is_dir() {
                folders.push(entry.path());
            } else if kind.is_file() {
                let mut file = File::open(entry.path())
                    .context(|| format!("opening {}", entry.path().display()))?;
                bytes += std::io::copy(&mut file, &mut std::io::sink())
                    .context(|| format!("reading {}", entry.path().display()))?;
            }
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_timed_and_failures_quote_the_output() {
        let folder = tempfile::tempdir().unwrap();
        let logs = Logs::new(folder.path()).unwrap();
        let run = logs
            .run(
                "echo",
                Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            )
            .unwrap();
        assert_eq!(run.stdout, "out\n");
        assert_eq!(run.stderr, "err\n");
        assert!(run.seconds > 0.0);
        let failure = logs
            .run(
                "fails",
                Command::new("sh").args(["-c", "echo why >&2; exit 3"]),
            )
            .unwrap_err();
        assert!(failure.message().contains("why"), "{failure}");
        assert!(failure.message().contains("exit status: 3"), "{failure}");
    }

    #[test]
    fn repeated_runs_summarise_to_the_median_time_and_highest_peak() {
        let run = |seconds, peak| Run {
            seconds,
            peak_kib: Some(peak),
            stdout: format!("{seconds}"),
            stderr: String::new(),
        };
        let summary = Run::summarise(vec![run(3.0, 10), run(1.0, 30), run(2.0, 20)]).unwrap();
        assert_eq!(summary.seconds, 2.0);
        assert_eq!(summary.stdout, "2");
        assert_eq!(summary.peak_kib, Some(30));
        assert!(Run::summarise(Vec::new()).is_none());
    }

    #[test]
    fn repeats_stop_after_a_slow_round() {
        let mut durations = vec![0.5, 7.0, 0.1].into_iter();
        let (summary, count) = repeat_while_quick(3, Duration::from_secs(5), |_| {
            Ok(Run {
                seconds: durations.next().unwrap(),
                peak_kib: None,
                stdout: String::new(),
                stderr: String::new(),
            })
        })
        .unwrap();
        assert_eq!(count, 2);
        assert_eq!(summary.seconds, 7.0);
        let (_, count) = repeat_while_quick(3, Duration::from_secs(5), |round| {
            Ok(Run {
                seconds: round as f64 / 10.0,
                peak_kib: None,
                stdout: String::new(),
                stderr: String::new(),
            })
        })
        .unwrap();
        assert_eq!(count, 3);
    }

    #[test]
    fn a_deadline_stops_the_run() {
        let folder = tempfile::tempdir().unwrap();
        let logs = Logs::new(folder.path()).unwrap();
        let started = Instant::now();
        let run = logs
            .run_with_deadline(
                "sleeps",
                Command::new("sleep").arg("30"),
                Some(Duration::from_millis(200)),
            )
            .unwrap();
        assert!(run.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn peak_memory_follows_what_the_child_touched() {
        if gnu_time().is_err() {
            eprintln!("GNU time is not installed; skipping");
            return;
        }
        let folder = tempfile::tempdir().unwrap();
        let logs = Logs::new(folder.path()).unwrap();
        // 64 MiB of zeros held by a shell variable grows its resident set.
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}",
        ]);
        let run = logs.run_with_peak("grows", &command).unwrap();
        assert_eq!(run.stdout.trim(), "67108864");
        assert!(run.peak_mebibytes() > 60.0, "{}", run.peak_mebibytes());
    }
}
