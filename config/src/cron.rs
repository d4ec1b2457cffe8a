//! Cron schedules as Argo's CronWorkflow reads them: five fields (minute hour day-of-month
//! month day-of-week), the `@hourly`-style shortcuts, `@every <duration>`, and IANA time zones.
//! Pure: the caller passes the time to compute from.

use chrono::{DateTime, TimeZone};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use std::time::Duration;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron pattern.
    Cron(Box<Cron>),
    /// `@every <duration>`: a fixed interval.
    Every(Duration),
}

/// Parse a schedule; the error says what is wrong, lowercase.
pub fn parse(text: &str) -> Result<Schedule, String> {
    let text = text.trim();
    if let Some(interval) = text.strip_prefix("@every ") {
        let every = crate::duration::parse(interval)?;
        if every.is_zero() {
            return Err("@every needs a positive duration".to_string());
        }
        return Ok(Schedule::Every(every));
    }
    if !text.starts_with('@') && text.split_whitespace().count() != 5 {
        return Err(format!(
            "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}",
            text.split_whitespace().count()
        ));
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser
        .parse(text)
        .map(|c| Schedule::Cron(Box::new(c)))
        .map_err(|e| crate::diag::house_style(&e.to_string(), "invalid cron pattern"))
}

/// An IANA time zone such as `America/New_York`.
pub fn parse_timezone(name: &str) -> Option<chrono_tz::Tz> {
    name.parse().ok()
}

impl Schedule {
    /// The first time the schedule fires strictly after `after`.
    pub fn next_after<Tz: TimeZone>(&self, after: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        match self {
            Schedule::Cron(cron) => cron.find_next_occurrence(after, false).ok(),
            Schedule::Every(every) => chrono::Duration::from_std(*every)
                .ok()
                .map(|d| after.clone() + d),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn five_fields_shortcuts_and_every() {
        assert!(parse("*/5 * * * *").is_ok());
        assert!(parse("0 9 * * MON-FRI").is_ok());
        assert!(parse("@hourly").is_ok());
        assert!(
            matches!(parse("@every 90s"), Ok(Schedule::Every(d)) if d == Duration::from_secs(90))
        );
        assert_eq!(
            parse("* * * *").err().as_deref(),
            Some("expected exactly 5 fields (minute hour day-of-month month day-of-week), found 4")
        );
        assert!(parse("61 * * * *").is_err());
        assert!(
            parse("0 0 * * * *").is_err(),
            "seconds are not part of Argo's schedules"
        );
    }

    #[test]
    fn next_occurrence_in_a_time_zone_across_dst() {
        let tz = parse_timezone("America/New_York").expect("zone");
        let schedule = parse("30 2 * * *").expect("parses");
        // 2026-03-08 is the spring-forward day in New York: 02:30 does not exist.
        let before = tz
            .with_ymd_and_hms(2026, 3, 7, 12, 0, 0)
            .single()
            .expect("time");
        let next = schedule.next_after(&before).expect("next");
        assert_eq!(
            next.format("%Y-%m-%d %H:%M %Z").to_string(),
            "2026-03-08 03:00 EDT",
            "a time in the skipped hour fires when the clock jumps, like cron"
        );
        let utc = Utc
            .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        assert_eq!(
            parse("@every 1h").expect("every").next_after(&utc),
            Some(
                Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0)
                    .single()
                    .expect("t")
            )
        );
        assert!(parse_timezone("Mars/Olympus").is_none());
    }
}
