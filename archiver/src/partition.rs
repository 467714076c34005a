//! Hive partitions: `<table>/dt=YYYY-MM-DD/hour=HH/`, from a row's UTC timestamp.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

/// One hour of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// Day (UTC).
    pub dt: NaiveDate,
    /// Hour of the day (UTC), 0..=23.
    pub hour: u32,
}

impl Partition {
    /// The partition of a UTC timestamp in nanoseconds.
    pub fn of_nanos(nanos: i64) -> Self {
        let t = DateTime::<Utc>::from_timestamp_nanos(nanos);
        Partition {
            dt: t.date_naive(),
            hour: t.hour(),
        }
    }

    /// Prefix of the partition's objects: `<table>/dt=YYYY-MM-DD/hour=HH`.
    pub fn prefix(&self, table: &str) -> String {
        format!(
            "{table}/dt={:04}-{:02}-{:02}/hour={:02}",
            self.dt.year(),
            self.dt.month(),
            self.dt.day(),
            self.hour
        )
    }

    /// Parses the `dt=...` and `hour=...` segments of an object path.
    pub fn parse_path(path: &str) -> Option<Self> {
        let mut dt = None;
        let mut hour = None;
        for seg in path.split('/') {
            if let Some(d) = seg.strip_prefix("dt=") {
                dt = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
            } else if let Some(h) = seg.strip_prefix("hour=") {
                hour = h.parse::<u32>().ok().filter(|h| *h < 24);
            }
        }
        Some(Partition {
            dt: dt?,
            hour: hour?,
        })
    }

    /// End of the partition's hour, UTC nanoseconds.
    pub fn end_nanos(&self) -> i64 {
        let start = self
            .dt
            .and_hms_opt(self.hour, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0);
        (start + 3600).saturating_mul(1_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_from_times_and_paths() {
        // 2024-03-05T07:59:59.999Z
        let p = Partition::of_nanos(1_709_625_599_999_000_000);
        assert_eq!(p.prefix("events"), "events/dt=2024-03-05/hour=07");
        assert_eq!(
            Partition::parse_path("events/dt=2024-03-05/hour=07/x.parquet"),
            Some(p)
        );
        assert_eq!(p.end_nanos(), 1_709_625_600_000_000_000);
        assert_eq!(
            Partition::parse_path("events/dt=2024-03-05/hour=24/x"),
            None
        );
        assert_eq!(Partition::parse_path("events/x"), None);
    }
}
