//! Reading a function's CloudWatch logs: all of them, one stream, or one invocation's
//! `START`..`REPORT` slice; and following them as they come.

use std::collections::HashSet;
use std::time::Duration;

use scar_core::provider::{LogLine, LogQuery};

use crate::error::{NotFoundExt as _, SdkResultExt as _};
use crate::{AwsError, AwsProvider};
use scar_core::lambda::log_group;

/// One log event as read from CloudWatch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEvent {
    /// The stream it is in.
    pub(crate) stream: String,
    /// Epoch milliseconds.
    pub(crate) timestamp: i64,
    /// The line, without its trailing newline.
    pub(crate) message: String,
}

impl AwsProvider {
    /// Why `name` has no log group: the function does not exist (as on every provider), or
    /// it has not logged yet.
    async fn no_log_group(&self, name: &str, group: &str) -> AwsError {
        match self.get_function(name).await {
            Err(e) => e,
            Ok(None) => scar_core::provider::SurfaceError::NotFound(name.into()).into(),
            Ok(Some(_)) => AwsError::Input(format!(
                "no logs for function {name:?}: its log group {group} does not exist (or the stream does not)"
            )),
        }
    }

    /// Reads `/aws/lambda/<name>` (FilterLogEvents, every page), in time order; only
    /// `query.stream` when given; with `query.request_id`, only that invocation's lines,
    /// from its `START RequestId:` line through its `REPORT RequestId:` line, in the
    /// stream that ran it.
    pub async fn read_logs(&self, name: &str, query: &LogQuery) -> Result<Vec<LogLine>, AwsError> {
        let events = self
            .log_events(
                name,
                query.stream.as_deref(),
                None,
                query.request_id.as_deref(),
            )
            .await?;
        let lines = match &query.request_id {
            Some(id) => slice_request(&events, id),
            None => events,
        };
        Ok(lines
            .into_iter()
            .map(|e| LogLine {
                stream: e.stream,
                message: e.message,
            })
            .collect())
    }

    /// Reads events from `start_time` (epoch ms) on. With `until_report_of`, stops reading
    /// pages once that invocation's `REPORT` line has been seen.
    async fn log_events(
        &self,
        name: &str,
        stream: Option<&str>,
        start_time: Option<i64>,
        until_report_of: Option<&str>,
    ) -> Result<Vec<LogEvent>, AwsError> {
        let group = log_group(name);
        let mut pages = self
            .logs
            .filter_log_events()
            .log_group_name(&group)
            .set_log_stream_names(stream.map(|s| vec![s.to_string()]))
            .set_start_time(start_time)
            .into_paginator()
            .send();
        let mut events = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page
                .map_sdk_err("logs:FilterLogEvents", &group)
                .optional()?;
            let Some(page) = page else {
                return Err(self.no_log_group(name, &group).await);
            };
            let mut done = false;
            for event in page.events() {
                let message = event
                    .message()
                    .unwrap_or_default()
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if let Some(id) = until_report_of {
                    done |= is_marker(&message, "REPORT", id);
                }
                events.push(LogEvent {
                    stream: event.log_stream_name().unwrap_or_default().to_string(),
                    timestamp: event.timestamp().unwrap_or_default(),
                    message,
                });
            }
            if done {
                break;
            }
        }
        // Stable: lines of the same millisecond keep the order CloudWatch gave them.
        events.sort_by_key(|e| e.timestamp);
        Ok(events)
    }

    /// Follows `/aws/lambda/<name>` (optionally one stream): polls every `interval` for
    /// events newer than the last seen and hands each line to `on_line`, until it returns
    /// `false`. Starts with the events of the last minute.
    pub async fn follow_logs_every(
        &self,
        name: &str,
        stream: Option<&str>,
        interval: Duration,
        on_line: &mut (dyn FnMut(LogLine) -> bool + Send),
    ) -> Result<(), AwsError> {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let mut since = now_ms - 60_000;
        // Events at `since` are read again on the next poll: remember which were shown.
        let mut shown_at_since: HashSet<(String, String)> = HashSet::new();
        loop {
            let events = self.log_events(name, stream, Some(since), None).await?;
            let newest = events.iter().map(|e| e.timestamp).max();
            let mut next_shown = HashSet::new();
            for event in events {
                let id = (event.stream.clone(), event.message.clone());
                if event.timestamp == since && shown_at_since.contains(&id) {
                    continue;
                }
                if Some(event.timestamp) == newest {
                    next_shown.insert(id);
                }
                let go_on = on_line(LogLine {
                    stream: event.stream,
                    message: event.message,
                });
                if !go_on {
                    return Ok(());
                }
            }
            if let Some(newest) = newest {
                if newest != since {
                    shown_at_since.clear();
                }
                shown_at_since.extend(next_shown);
                since = newest;
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// Whether `line` is the `START`/`END`/`REPORT` line of request `id`.
fn is_marker(line: &str, marker: &str, id: &str) -> bool {
    line.strip_prefix(marker)
        .and_then(|rest| rest.strip_prefix(" RequestId: "))
        .and_then(|rest| rest.strip_prefix(id))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
}

/// One invocation's lines: from the `START RequestId: <id>` line through the
/// `REPORT RequestId: <id>` line, in the stream of the `START` line (one stream runs one
/// invocation at a time, so lines of other streams in between belong to others). Without
/// a `REPORT` line yet (still running), through the stream's last line.
pub(crate) fn slice_request(events: &[LogEvent], request_id: &str) -> Vec<LogEvent> {
    let Some(start) = events
        .iter()
        .position(|e| is_marker(&e.message, "START", request_id))
    else {
        return Vec::new();
    };
    let stream = &events[start].stream;
    let mut slice = Vec::new();
    for event in events[start..].iter().filter(|e| &e.stream == stream) {
        slice.push(event.clone());
        if is_marker(&event.message, "REPORT", request_id) {
            break;
        }
    }
    slice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(stream: &str, timestamp: i64, message: &str) -> LogEvent {
        LogEvent {
            stream: stream.into(),
            timestamp,
            message: message.into(),
        }
    }

    #[test]
    fn slices_one_request_out_of_interleaved_streams() {
        let events = vec![
            ev("a", 1, "START RequestId: r1 Version: $LATEST"),
            ev("b", 2, "START RequestId: r10 Version: $LATEST"),
            ev("a", 3, "one"),
            ev("b", 4, "ten"),
            ev("a", 5, "END RequestId: r1"),
            ev("a", 6, "REPORT RequestId: r1\tDuration: 1 ms"),
            ev("a", 7, "START RequestId: r2 Version: $LATEST"),
            ev("b", 8, "REPORT RequestId: r10\tDuration: 1 ms"),
        ];
        let r1: Vec<_> = slice_request(&events, "r1")
            .into_iter()
            .map(|e| e.message)
            .collect();
        assert_eq!(
            r1,
            [
                "START RequestId: r1 Version: $LATEST",
                "one",
                "END RequestId: r1",
                "REPORT RequestId: r1\tDuration: 1 ms"
            ]
        );
        let r10 = slice_request(&events, "r10");
        assert_eq!(r10.len(), 3);
        assert!(r10.iter().all(|e| e.stream == "b"));
        assert_eq!(slice_request(&events, "r2").len(), 1);
        assert!(slice_request(&events, "r3").is_empty());
    }
}
