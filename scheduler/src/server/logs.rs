//! `GET /api/v1/workflows/{namespace}/{name}/log` (and `.../{podName}/log`): a run's step
//! logs as Argo streams them, one `{"result": {"content", "podName"}}` line per log line.
//!
//! The logs are the files the executor kept for each step attempt (JSON lines, see
//! `cox_worker::logs`), so they outlive their steps: any run still stored has its logs.
//! A step's "pod name" is its node id (Argo's pod names with `POD_NAMES=v1`); `podName`
//! also accepts the node's name or display name.
//!
//! Options, as Argo's `logOptions`: `container` (only `main` has output here; other
//! containers answer no lines), `follow` (stream until the run finishes), `tailLines`
//! (per step), `sinceSeconds`, `sinceTime.seconds`, `timestamps`, `limitBytes` (per step, as
//! Kubernetes counts them: the lines with their ends, timestamps included, before `grep`;
//! the last line may be cut); and `grep`, a regular expression lines must match. Without `follow`, lines of all steps are sorted by time; following, they are
//! sent as they are written, new steps joining as they start.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use chrono::{DateTime, SecondsFormat, Utc};
use cox_worker::{LogFollower, LogLine, read_log};
use regex::Regex;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::warn;

use super::error::{ApiError, ApiResult};
use super::workflow::namespace_of;
use super::{AppState, streaming};
use crate::engine::Engine;
use crate::machine::{Node, NodeType, RunState};

/// How often a follow looks again for the log file of a step that has started but whose
/// executor has not created the file yet.
const MISSING_LOG_RETRY: Duration = Duration::from_millis(100);

/// The request's options.
#[derive(Debug, Clone)]
struct LogOptions {
    pod: Option<String>,
    follow: bool,
    main_container: bool,
    tail: Option<usize>,
    since: Option<DateTime<Utc>>,
    timestamps: bool,
    limit_bytes: Option<u64>,
    grep: Option<Regex>,
}

/// What is left of one step's `limitBytes`.
#[derive(Debug, Clone, Copy)]
struct Budget(Option<u64>);

impl Budget {
    /// `content` as far as the budget goes (then spent): all of it, its start (cut at a
    /// character boundary), or `None` once nothing is left.
    fn take(&mut self, content: String) -> Option<String> {
        let Some(left) = self.0 else {
            return Some(content);
        };
        if left == 0 {
            return None;
        }
        // The line and its end, as the log file has them.
        let size = content.len() as u64 + 1;
        if size <= left {
            self.0 = Some(left - size);
            return Some(content);
        }
        self.0 = Some(0);
        let mut end = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(content.len());
        while !content.is_char_boundary(end) {
            end -= 1;
        }
        (end > 0).then(|| content[..end].to_string())
    }

    fn spent(&self) -> bool {
        self.0 == Some(0)
    }
}

impl LogOptions {
    fn parse(query: &HashMap<String, String>, pod: Option<String>) -> ApiResult<LogOptions> {
        // grpc-gateway reads booleans with Go's strconv.ParseBool (Python clients send `True`).
        let flag = |key: &str| -> ApiResult<bool> {
            match query.get(key).map(String::as_str) {
                None | Some("" | "0" | "f" | "F" | "false" | "False" | "FALSE") => Ok(false),
                Some("1" | "t" | "T" | "true" | "True" | "TRUE") => Ok(true),
                Some(other) => Err(ApiError::invalid(format!(
                    "{key}: expected true or false, got {other:?}"
                ))),
            }
        };
        let number = |key: &str| -> ApiResult<Option<i64>> {
            match query.get(key).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(value) => value.parse::<i64>().map(Some).map_err(|_| {
                    ApiError::invalid(format!("{key}: expected an integer, got {value:?}"))
                }),
            }
        };
        let tail = number("logOptions.tailLines")?
            .map(|n| {
                usize::try_from(n).map_err(|_| {
                    ApiError::invalid(format!(
                        "logOptions.tailLines: must not be negative, got {n}"
                    ))
                })
            })
            .transpose()?;
        let since_seconds = number("logOptions.sinceSeconds")?
            .map(|seconds| Utc::now() - chrono::Duration::seconds(seconds.max(0)));
        let since_time = number("logOptions.sinceTime.seconds")?
            .map(|seconds| DateTime::from_timestamp(seconds, 0).unwrap_or(DateTime::UNIX_EPOCH));
        // Kubernetes allows one of the two; given both, the later start is kept.
        let since = since_seconds.max(since_time);
        let limit_bytes = number("logOptions.limitBytes")?
            .map(|n| {
                u64::try_from(n).map_err(|_| {
                    ApiError::invalid(format!(
                        "logOptions.limitBytes: must not be negative, got {n}"
                    ))
                })
            })
            .transpose()?;
        let grep = query
            .get("grep")
            .filter(|g| !g.is_empty())
            .map(|g| Regex::new(g).map_err(|e| ApiError::invalid(format!("grep: {e}"))))
            .transpose()?;
        let container = query
            .get("logOptions.container")
            .filter(|c| !c.is_empty())
            .map_or("main", String::as_str);
        let pod = pod.or_else(|| query.get("podName").cloned());
        Ok(LogOptions {
            pod: pod.filter(|p| !p.is_empty()),
            follow: flag("logOptions.follow")?,
            main_container: container == "main",
            tail,
            since,
            timestamps: flag("logOptions.timestamps")?,
            limit_bytes,
            grep,
        })
    }

    /// Whether `node` is a step whose log was asked for.
    fn selects(&self, node: &Node) -> bool {
        node.node_type == NodeType::Pod
            && node.launched
            && self.main_container
            && self
                .pod
                .as_ref()
                .is_none_or(|pod| *pod == node.id || *pod == node.name || *pod == node.display_name)
    }

    /// A step's fresh `limitBytes` budget.
    fn budget(&self) -> Budget {
        Budget(self.limit_bytes)
    }

    /// The entry for one line of the step `pod` whose budget is `budget`, or `None` when
    /// the filters drop it (or the budget is spent).
    fn entry(&self, pod: &str, line: &LogLine, budget: &mut Budget) -> Option<Value> {
        if self.since.is_some_and(|since| line.time < since) {
            return None;
        }
        let content = if self.timestamps {
            format!(
                "{} {}",
                line.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
                line.line
            )
        } else {
            line.line.clone()
        };
        let content = budget.take(content)?;
        if self.grep.as_ref().is_some_and(|rx| !rx.is_match(&content)) {
            return None;
        }
        Some(json!({ "content": content, "podName": pod }))
    }
}

/// Joins records split from one long line (`partial`) back into the line.
#[derive(Default)]
struct Joiner {
    pending: Option<LogLine>,
}

impl Joiner {
    fn push(&mut self, record: LogLine) -> Option<LogLine> {
        let partial = record.partial;
        let line = match self.pending.take() {
            Some(mut started) => {
                started.line.push_str(&record.line);
                started
            }
            None => record,
        };
        if partial {
            self.pending = Some(line);
            None
        } else {
            Some(line)
        }
    }

    /// A last line without its end (the step stopped mid-line).
    fn finish(&mut self) -> Option<LogLine> {
        self.pending.take()
    }
}

/// The whole lines of `records`.
fn whole_lines(records: Vec<LogLine>) -> Vec<LogLine> {
    let mut joiner = Joiner::default();
    let mut lines: Vec<LogLine> = records.into_iter().filter_map(|r| joiner.push(r)).collect();
    lines.extend(joiner.finish());
    lines
}

/// `GET /api/v1/workflows/{namespace}/{name}/log`.
pub async fn workflow_logs(
    State(state): State<AppState>,
    Path((namespace, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    logs(state, namespace, name, None, &query, &headers)
}

/// `GET /api/v1/workflows/{namespace}/{name}/{podName}/log`.
pub async fn pod_logs(
    State(state): State<AppState>,
    Path((namespace, name, pod)): Path<(String, String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    logs(state, namespace, name, Some(pod), &query, &headers)
}

fn logs(
    state: AppState,
    namespace: String,
    name: String,
    pod: Option<String>,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let options = LogOptions::parse(query, pod)?;
    let run = state
        .engine
        .get(&name)?
        .filter(|run| namespace_of(run) == namespace)
        .ok_or_else(|| ApiError::workflow_not_found(&name))?;
    let (sender, receiver) = mpsc::channel(streaming::BUFFER);
    let engine = Arc::clone(&state.engine);
    let progress = options.follow.then(|| engine.watch(&name)).flatten();
    tokio::spawn(async move {
        match progress {
            Some(progress) => follow(&engine, &name, progress, &options, &sender).await,
            None => send_stored(&engine, &run, &options, &sender).await,
        }
    });
    Ok(streaming::response(
        receiver,
        streaming::wants_events(headers),
        state.streams_end.clone(),
    ))
}

/// The steps whose logs are asked for, in the order they started, with their log files.
fn log_files(engine: &Engine, run: &RunState, options: &LogOptions) -> Vec<(String, u32, PathBuf)> {
    let mut nodes: Vec<&Node> = run.nodes.values().filter(|n| options.selects(n)).collect();
    nodes.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    nodes
        .into_iter()
        .filter_map(|node| {
            let path = engine
                .executor()
                .log_path(&run.name, &node.id, node.attempt)?;
            Some((node.id.clone(), node.attempt, path))
        })
        .collect()
}

/// Every line written so far, sorted by time (ties keep the steps' order).
async fn send_stored(
    engine: &Engine,
    run: &RunState,
    options: &LogOptions,
    sender: &mpsc::Sender<Value>,
) {
    let mut lines = Vec::new();
    for (pod, _, path) in log_files(engine, run, options) {
        let records = match read_log(&path).await {
            Ok(records) => records,
            // A step that never got as far as creating its log has no lines.
            Err(cox_worker::Error::Log { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                continue;
            }
            Err(e) => {
                warn!(run = %run.name, node = %pod, error = %e, "step log not readable");
                continue;
            }
        };
        let mut pod_lines = whole_lines(records);
        if let Some(tail) = options.tail {
            pod_lines.drain(..pod_lines.len().saturating_sub(tail));
        }
        lines.extend(pod_lines.into_iter().map(|line| (pod.clone(), line)));
    }
    lines.sort_by_key(|(_, line)| line.time);
    let mut budgets: HashMap<String, Budget> = HashMap::new();
    for (pod, line) in lines {
        let budget = budgets
            .entry(pod.clone())
            .or_insert_with(|| options.budget());
        if let Some(entry) = options.entry(&pod, &line, budget)
            && sender.send(entry).await.is_err()
        {
            return;
        }
    }
}

/// Follow each step's log as it is written, starting on the steps as they start, until
/// the run has finished and every log is read to its end (or the client has gone).
async fn follow(
    engine: &Engine,
    name: &str,
    mut progress: watch::Receiver<RunState>,
    options: &LogOptions,
    sender: &mpsc::Sender<Value>,
) {
    let mut followers = Followers::default();
    loop {
        let run = progress.borrow_and_update().clone();
        let missing = followers.look(engine, &run, options, sender).await;
        if run.is_finished() {
            break;
        }
        tokio::select! {
            changed = progress.changed() => if changed.is_err() {
                // The actor is gone (stopped, or the run deleted): the store has the
                // last state, and steps that ended since the last look are read whole.
                if let Ok(Some(run)) = engine.get(name) {
                    followers.look(engine, &run, options, sender).await;
                }
                break;
            },
            () = tokio::time::sleep(MISSING_LOG_RETRY), if missing => {}
            () = sender.closed() => return,
        }
    }
    // Whatever is written now is all there will be.
    followers.finished.clear();
    while followers.tasks.join_next().await.is_some() {}
}

/// The followers of one request.
#[derive(Default)]
struct Followers {
    /// Per step attempt: tells its follower that nothing more will be written.
    finished: HashMap<(String, u32), watch::Sender<bool>>,
    tasks: JoinSet<()>,
}

impl Followers {
    /// Start following the steps of `run` not followed yet, tell those that have ended;
    /// whether a started step has no log file yet.
    async fn look(
        &mut self,
        engine: &Engine,
        run: &RunState,
        options: &LogOptions,
        sender: &mpsc::Sender<Value>,
    ) -> bool {
        let mut missing = false;
        for (pod, attempt, path) in log_files(engine, run, options) {
            let done = run.nodes.get(&pod).is_some_and(|n| n.phase.is_done());
            let key = (pod.clone(), attempt);
            if let Some(finished) = self.finished.get(&key) {
                if done {
                    let _ = finished.send(true);
                }
                continue;
            }
            let Ok(follower) = LogFollower::open(&path).await else {
                // Started, but its log is not there yet; a step that ended without one
                // has none.
                missing |= !done;
                continue;
            };
            let (finished, until) = watch::channel(done);
            self.finished.insert(key, finished);
            self.tasks.spawn(follow_one(
                follower.until(until),
                path,
                pod,
                options.clone(),
                sender.clone(),
            ));
        }
        missing
    }
}

/// One step's lines, from the start (or the last `tailLines` already written), until
/// its follower ends.
async fn follow_one(
    mut follower: LogFollower,
    path: PathBuf,
    pod: String,
    options: LogOptions,
    sender: mpsc::Sender<Value>,
) {
    let mut skip = match options.tail {
        Some(tail) => read_log(&path)
            .await
            .map(|records| records.iter().filter(|r| !r.partial).count())
            .unwrap_or(0)
            .saturating_sub(tail),
        None => 0,
    };
    let mut joiner = Joiner::default();
    let mut budget = options.budget();
    while let Some(record) = follower.next().await {
        let Ok(record) = record else {
            break;
        };
        let Some(line) = joiner.push(record) else {
            continue;
        };
        if skip > 0 {
            skip -= 1;
            continue;
        }
        if let Some(entry) = options.entry(&pod, &line, &mut budget)
            && sender.send(entry).await.is_err()
        {
            return;
        }
        if budget.spent() {
            return;
        }
    }
    if let Some(line) = joiner.finish()
        && let Some(entry) = options.entry(&pod, &line, &mut budget)
    {
        let _ = sender.send(entry).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(line: &str, partial: bool) -> LogLine {
        LogLine {
            time: Utc::now(),
            stream: cox_worker::Stream::Stdout,
            line: line.into(),
            partial,
        }
    }

    #[test]
    fn partial_records_join_into_lines() {
        let lines = whole_lines(vec![
            record("a", false),
            record("b", true),
            record("c", true),
            record("d", false),
            record("e", true),
        ]);
        let text: Vec<&str> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(text, ["a", "bcd", "e"]);
    }

    #[test]
    fn limit_bytes_counts_line_ends_and_cuts_the_last_line_at_a_character() {
        let mut budget = Budget(Some(9));
        assert_eq!(budget.take("abc".into()).as_deref(), Some("abc"));
        // 5 left: "é" is two bytes, so "xé" and its end take 4, then "yéz" is cut to "y".
        assert_eq!(budget.take("xé".into()).as_deref(), Some("xé"));
        assert_eq!(budget.take("yéz".into()).as_deref(), Some("y"));
        assert!(budget.spent());
        assert_eq!(budget.take("more".into()), None);
        let mut unlimited = Budget(None);
        assert_eq!(unlimited.take("all".into()).as_deref(), Some("all"));
        assert!(!unlimited.spent());
    }

    #[test]
    fn options_are_checked() {
        let query = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>()
        };
        let options = LogOptions::parse(
            &query(&[
                ("logOptions.follow", "true"),
                ("grep", "^a"),
                ("podName", "p"),
            ]),
            None,
        )
        .expect("valid");
        assert!(options.follow && options.main_container);
        assert_eq!(options.pod.as_deref(), Some("p"));
        let mut budget = options.budget();
        assert!(
            options
                .entry("p", &record("abc", false), &mut budget)
                .is_some()
        );
        assert!(
            options
                .entry("p", &record("bca", false), &mut budget)
                .is_none()
        );
        for (key, value, message) in [
            (
                "logOptions.follow",
                "yes",
                "logOptions.follow: expected true or false",
            ),
            (
                "logOptions.tailLines",
                "x",
                "logOptions.tailLines: expected an integer",
            ),
            (
                "logOptions.tailLines",
                "-1",
                "logOptions.tailLines: must not be negative",
            ),
            (
                "logOptions.limitBytes",
                "-1",
                "logOptions.limitBytes: must not be negative",
            ),
            ("grep", "(", "grep: "),
        ] {
            let error = LogOptions::parse(&query(&[(key, value)]), None).expect_err(key);
            assert!(error.message.starts_with(message), "{}", error.message);
        }
    }
}
