//! Drawing a run's progress on stderr, from the executor's reports.
//!
//! On a terminal: one indicatif bar per kind of work (blob bytes with rate
//! and ETA, manifests, tags). Otherwise (CI logs, pipes): one plain line
//! every few seconds (`FERRY_PROGRESS_INTERVAL_MS` changes the interval,
//! for tests). With `--log-level error`: nothing.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_executor::run::{Outcome, Progress};
use ferry_planner::{Action, ActionGraph, ActionKey, Plan, PlannedAction};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bars,
    Lines(Duration),
    Quiet,
}

impl Mode {
    /// Bars on a terminal, lines elsewhere, nothing at `--log-level error`.
    pub fn choose(log_level: &str) -> Mode {
        if log_level == "error" {
            return Mode::Quiet;
        }
        if std::io::stderr().is_terminal() {
            return Mode::Bars;
        }
        let interval = std::env::var("FERRY_PROGRESS_INTERVAL_MS")
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .map_or(Duration::from_secs(5), Duration::from_millis);
        Mode::Lines(interval)
    }
}

/// Counts of one kind of work.
#[derive(Default)]
struct Counter {
    total: u64,
    done: AtomicU64,
    failed: AtomicU64,
}

/// What the run has done so far (shared with the line printer).
#[derive(Default)]
struct Tally {
    bytes_total: u64,
    bytes: AtomicU64,
    blobs: Counter,
    manifests: Counter,
    tags: Counter,
    /// Images with planned work: done when every planned action of theirs
    /// succeeded, failed when one of them failed or was skipped.
    images: Counter,
    image_work: ImageWork,
}

/// Which planned actions each image waits for.
#[derive(Default)]
struct ImageWork {
    /// Planned actions of each image not finished yet.
    remaining: Vec<AtomicUsize>,
    /// Whether an action of the image failed or was skipped.
    failed: Vec<AtomicBool>,
    /// Action key → the images (indices above) the action belongs to.
    images_of: HashMap<ActionKey, Vec<usize>>,
}

impl ImageWork {
    /// The planned actions of every image of `graph` that has any.
    fn of(plan: &Plan, graph: &ActionGraph) -> ImageWork {
        let planned: HashSet<ActionKey> = plan.actions.iter().map(|action| action.key).collect();
        let mut work = ImageWork::default();
        for image in graph.images() {
            let mine: Vec<ActionKey> = image
                .nodes()
                .map(|node| graph.key(node))
                .filter(|key| planned.contains(key))
                .collect();
            if mine.is_empty() {
                continue;
            }
            let index = work.remaining.len();
            work.remaining.push(AtomicUsize::new(mine.len()));
            work.failed.push(AtomicBool::new(false));
            for key in mine {
                work.images_of.entry(key).or_default().push(index);
            }
        }
        work
    }

    /// Counts `action`'s outcome against its images; returns how many of
    /// them completed now and how many failed now.
    fn finished(&self, planned: &PlannedAction, outcome: Outcome) -> (u64, u64) {
        let Some(images) = self.images_of.get(&planned.key) else {
            return (0, 0);
        };
        let (mut completed, mut failed) = (0, 0);
        for &image in images {
            let failed_now = !matches!(outcome, Outcome::Succeeded)
                && !self.failed[image].swap(true, Ordering::SeqCst);
            if failed_now {
                failed += 1;
            }
            let left = self.remaining[image].fetch_sub(1, Ordering::SeqCst);
            if left == 1 && !self.failed[image].load(Ordering::SeqCst) {
                completed += 1;
            }
        }
        (completed, failed)
    }
}

impl Tally {
    fn counter(&self, action: &Action) -> &Counter {
        match action {
            Action::UploadBlob { .. }
            | Action::LinkBlob { .. }
            | Action::FetchBlob { .. }
            | Action::PackBlob { .. } => &self.blobs,
            Action::PushManifest { .. } | Action::PackManifest { .. } => &self.manifests,
            Action::Tag { .. } | Action::RecordImage { .. } => &self.tags,
        }
    }

    /// The plain progress line.
    fn line(&self, elapsed: Duration) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let seconds = elapsed.as_secs_f64().max(0.001);
        let rate = bytes as f64 / seconds;
        let eta = if rate > 0.0 && bytes < self.bytes_total {
            format!(
                ", ETA {}s",
                ((self.bytes_total - bytes) as f64 / rate).ceil()
            )
        } else {
            String::new()
        };
        let count = |counter: &Counter| {
            let failed = counter.failed.load(Ordering::Relaxed);
            let failed = if failed > 0 {
                format!(" ({failed} failed)")
            } else {
                String::new()
            };
            format!(
                "{}/{}{failed}",
                counter.done.load(Ordering::Relaxed),
                counter.total
            )
        };
        format!(
            "progress: blobs {} of {} ({}/s{eta}), {} blob actions; manifests {}; tags {}; images {}; {:.0}s elapsed",
            human_bytes(bytes),
            human_bytes(self.bytes_total),
            human_bytes(rate as u64),
            count(&self.blobs),
            count(&self.manifests),
            count(&self.tags),
            count(&self.images),
            elapsed.as_secs_f64()
        )
    }
}

fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// The bars of a terminal.
struct Bars {
    _multi: MultiProgress,
    bytes: ProgressBar,
    manifests: ProgressBar,
    tags: ProgressBar,
    images: ProgressBar,
}

/// The line printer's thread and its stop signal.
struct Printer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

/// The CLI's [`Progress`]: bars, lines or nothing.
pub struct RunProgress {
    tally: Arc<Tally>,
    bars: Option<Bars>,
    printer: Option<Printer>,
    finished: AtomicBool,
}

impl RunProgress {
    /// Starts showing the progress of `plan` (compiled as `graph`) in
    /// `mode`.
    pub fn start(plan: &Plan, graph: &ActionGraph, mode: Mode) -> RunProgress {
        let mut tally = Tally {
            image_work: ImageWork::of(plan, graph),
            ..Tally::default()
        };
        tally.images.total = tally.image_work.remaining.len() as u64;
        for planned in &plan.actions {
            match &planned.action {
                Action::UploadBlob { size, .. }
                | Action::FetchBlob { size, .. }
                | Action::PackBlob { size, .. } => {
                    tally.bytes_total += size;
                    tally.blobs.total += 1;
                }
                Action::LinkBlob { .. } => tally.blobs.total += 1,
                Action::PushManifest { .. } | Action::PackManifest { .. } => {
                    tally.manifests.total += 1
                }
                Action::Tag { .. } | Action::RecordImage { .. } => tally.tags.total += 1,
            }
        }
        let tally = Arc::new(tally);
        let mut progress = RunProgress {
            tally: tally.clone(),
            bars: None,
            printer: None,
            finished: AtomicBool::new(false),
        };
        match mode {
            Mode::Quiet => {}
            Mode::Bars => progress.bars = Some(Self::bars(&tally)),
            Mode::Lines(interval) => {
                let stop = Arc::new((Mutex::new(false), Condvar::new()));
                let signal = stop.clone();
                let started = Instant::now();
                let thread = std::thread::spawn(move || {
                    let (lock, wake) = &*signal;
                    let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                    // The flag is checked before every wait: a run that
                    // ends before this thread first takes the lock (a plan
                    // with nothing to do) must not wait out an interval.
                    while !*stopped {
                        let (guard, timeout) = wake
                            .wait_timeout(stopped, interval)
                            .unwrap_or_else(|e| e.into_inner());
                        stopped = guard;
                        if !*stopped && timeout.timed_out() {
                            eprintln!("{}", tally.line(started.elapsed()));
                        }
                    }
                });
                progress.printer = Some(Printer {
                    stop,
                    thread: Some(thread),
                });
            }
        }
        progress
    }

    fn bars(tally: &Tally) -> Bars {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let bytes_style = ProgressStyle::with_template(
            "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        let count_style = ProgressStyle::with_template("{prefix:>9} [{bar:30}] {pos}/{len}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = |length: u64, style: &ProgressStyle, prefix: &'static str| {
            let bar = multi.add(ProgressBar::new(length));
            bar.set_style(style.clone());
            bar.set_prefix(prefix);
            bar
        };
        Bars {
            bytes: bar(tally.bytes_total, &bytes_style, "blobs"),
            manifests: bar(tally.manifests.total, &count_style, "manifests"),
            tags: bar(tally.tags.total, &count_style, "tags"),
            images: bar(tally.images.total, &count_style, "images"),
            _multi: multi,
        }
    }

    /// Stops drawing; the summary that follows is printed by the caller.
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(bars) = &self.bars {
            // The summary line that follows says where the run ended.
            bars.bytes.finish_and_clear();
            bars.manifests.finish_and_clear();
            bars.tags.finish_and_clear();
            bars.images.finish_and_clear();
        }
        if let Some(printer) = &self.printer {
            let (lock, wake) = &*printer.stop;
            *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
            wake.notify_all();
        }
    }
}

impl Drop for RunProgress {
    fn drop(&mut self) {
        self.finish();
        if let Some(printer) = &mut self.printer
            && let Some(thread) = printer.thread.take()
        {
            let _ = thread.join();
        }
    }
}

impl Progress for RunProgress {
    fn bytes_moved(&self, _action: &Action, bytes: u64) {
        self.tally.bytes.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bars) = &self.bars {
            bars.bytes.inc(bytes);
        }
    }

    fn action_finished(&self, planned: &PlannedAction, outcome: Outcome) {
        let action = &planned.action;
        let (completed, failed) = self.tally.image_work.finished(planned, outcome);
        self.tally
            .images
            .done
            .fetch_add(completed, Ordering::Relaxed);
        self.tally
            .images
            .failed
            .fetch_add(failed, Ordering::Relaxed);
        if let Some(bars) = &self.bars {
            bars.images.inc(completed);
        }
        let counter = self.tally.counter(action);
        match outcome {
            Outcome::Succeeded => counter.done.fetch_add(1, Ordering::Relaxed),
            Outcome::Failed | Outcome::Skipped => counter.failed.fetch_add(1, Ordering::Relaxed),
        };
        let Some(bars) = &self.bars else {
            return;
        };
        match action {
            Action::PushManifest { .. } | Action::PackManifest { .. } => bars.manifests.inc(1),
            Action::Tag { .. } | Action::RecordImage { .. } => bars.tags.inc(1),
            Action::UploadBlob { .. }
            | Action::LinkBlob { .. }
            | Action::FetchBlob { .. }
            | Action::PackBlob { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_line_names_bytes_rate_eta_and_counts() {
        let tally = Tally {
            bytes_total: 4 * 1024 * 1024,
            bytes: AtomicU64::new(1024 * 1024),
            blobs: Counter {
                total: 4,
                done: AtomicU64::new(1),
                failed: AtomicU64::new(0),
            },
            manifests: Counter {
                total: 2,
                done: AtomicU64::new(0),
                failed: AtomicU64::new(1),
            },
            tags: Counter::default(),
            images: Counter {
                total: 3,
                done: AtomicU64::new(1),
                failed: AtomicU64::new(0),
            },
            image_work: ImageWork::default(),
        };
        let line = tally.line(Duration::from_secs(2));
        assert_eq!(
            line,
            "progress: blobs 1.00 MiB of 4.00 MiB (512.00 KiB/s, ETA 6s), 1/4 blob actions; manifests 0/2 (1 failed); tags 0/0; images 1/3; 2s elapsed"
        );
    }

    fn image(name: &str, repository: &str, seed: u8) -> ferry_planner::ResolvedImage {
        use ferry_schemas::{Digest, DigestAlgorithm};
        let digest = |byte: u8| {
            Digest::new(DigestAlgorithm::Sha256, &format!("{byte:02x}").repeat(32)).unwrap()
        };
        let top = digest(seed);
        ferry_planner::ResolvedImage {
            name: name.to_owned(),
            source: ferry_planner::Source::Registry(format!("quay.io/{repository}")),
            blob_sources: Default::default(),
            destination_repository: repository.to_owned(),
            destination_tag: Some("1".to_owned()),
            top: top.clone(),
            manifests: vec![ferry_planner::ResolvedManifest {
                digest: top,
                media_type: "application/vnd.oci.image.manifest.v1+json".to_owned(),
                size: 100,
                children: Vec::new(),
                // A base layer both images share, and one of its own.
                blobs: vec![(digest(0xee), 10), (digest(seed + 1), 20)],
            }],
            category: ferry_planner::Category::Additional,
            signature_of: None,
        }
    }

    #[test]
    fn images_count_as_done_when_all_their_planned_actions_succeeded() {
        let images = [
            image("quay.io/a:1", "a", 0x10),
            image("quay.io/b:1", "b", 0x20),
        ];
        let destination = ferry_planner::Destination {
            registry: "mirror.local".to_owned(),
            prefix: String::new(),
        };
        let graph = ferry_planner::compile(&images, &destination);
        let plan = ferry_planner::plan(&graph, &ferry_planner::StateSnapshot::default());
        let progress = RunProgress::start(&plan, &graph, Mode::Quiet);
        assert_eq!(progress.tally.images.total, 2);
        // Every action but the last of image b succeeds; image b's tag fails.
        let tag_of_b = plan
            .actions
            .iter()
            .position(|planned| {
                matches!(&planned.action, Action::Tag { repository, .. } if repository == "b")
            })
            .unwrap();
        let mut done_before_last = 0;
        for (index, planned) in plan.actions.iter().enumerate() {
            let outcome = if index == tag_of_b {
                Outcome::Failed
            } else {
                Outcome::Succeeded
            };
            progress.action_finished(planned, outcome);
            if index + 2 == plan.actions.len() {
                done_before_last = progress.tally.images.done.load(Ordering::SeqCst);
            }
        }
        assert!(done_before_last <= 1, "{done_before_last}");
        assert_eq!(progress.tally.images.done.load(Ordering::SeqCst), 1);
        assert_eq!(progress.tally.images.failed.load(Ordering::SeqCst), 1);
        assert!(
            progress
                .tally
                .line(Duration::from_secs(1))
                .contains("images 1/2 (1 failed)")
        );
    }
}
