//! How values are shown to people and read back from forms: times, ages,
//! money in major units (with the currency's number of decimals), labels.

use chrono::{DateTime, Utc};

use crate::domain::FulfillmentStatus;
use crate::domain::delivery::SyncState;
use crate::domain::holds::HoldType;
use crate::domain::order::CancelOutcome;
use crate::storage::from_micros;

/// `2026-01-02 13:45 UTC`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// `2026-01-02 13:45`: where a heading says the times are UTC (lists).
pub fn minute(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// A stored time (microseconds) as [`time`].
pub fn micros(us: i64) -> String {
    time(from_micros(us))
}

/// A time to the second, for pages where the order of events within a
/// minute matters (an order's timelines): `14:53:07 UTC` on `now`'s day,
/// `2026-01-02 14:53:07 UTC` on any other.
pub fn clock(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M:%S UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

/// How far `t` is from `now`, in words: `in 12 s`, `3 min ago`,
/// `2 h 5 min ago`; `now` within a second either way.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let ms = (t - now).num_milliseconds();
    if ms.abs() < 1000 {
        "now".to_owned()
    } else if ms > 0 {
        format!("in {}", age(ms / 1000))
    } else {
        format!("{} ago", age(-ms / 1000))
    }
}

/// `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

/// A stored time (microseconds) for a table cell, to the second, and how
/// far it is from `now`: (`14:53:07 UTC`, `in 12 s`). The date is added
/// when it is not `now`'s: (`2026-01-02 14:53:07 UTC`, `3 d 2 h ago`).
pub fn clock_and_relative(us: i64, now: i64) -> (String, String) {
    let (t, n) = (from_micros(us), from_micros(now));
    (clock(t, n), relative(t, n))
}

/// Decimal places of an ISO 4217 currency's minor unit.
pub fn minor_digits(currency: &str) -> u32 {
    const ZERO: &str = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF";
    const THREE: &str = "BHD IQD JOD KWD LYD OMR TND";
    let c = currency.trim().to_ascii_uppercase();
    if c.len() != 3 {
        2
    } else if ZERO.split(' ').any(|z| z == c) {
        0
    } else if THREE.split(' ').any(|z| z == c) {
        3
    } else {
        2
    }
}

/// Minor units as a decimal amount: `1999` GBP is `19.99`, with thousands
/// separated: `1,234.50`.
pub fn amount(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    let scale = 10i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let whole = abs / scale as u64;
    let frac = abs % scale as u64;
    let whole = whole.to_string();
    let mut grouped = String::with_capacity(whole.len() + whole.len() / 3);
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    if digits == 0 {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac:0width$}", width = digits as usize)
    }
}

/// `19.99 GBP`.
pub fn money(minor: i64, currency: &str) -> String {
    format!("{} {currency}", amount(minor, currency))
}

/// Minor units as typed into a form field (no separators): `19.99`.
pub fn amount_input(minor: i64, currency: &str) -> String {
    amount(minor, currency).replace(',', "")
}

/// Reads a decimal amount typed by a person (`19.99`, `19,99` is refused,
/// `1,234.50` and `20` are fine) into minor units, exactly (no floats).
pub fn parse_amount(s: &str, currency: &str) -> Result<i64, String> {
    let digits = minor_digits(currency) as usize;
    let cleaned: String = s
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != ' ')
        .collect();
    let bad = || {
        if digits == 0 {
            "must be a whole amount, e.g. 1500".to_owned()
        } else {
            format!(
                "must be an amount with at most {digits} decimals, e.g. 19.{}",
                "9".repeat(digits)
            )
        }
    };
    let (whole, frac) = match cleaned.split_once('.') {
        Some((w, f)) => (w, f),
        None => (cleaned.as_str(), ""),
    };
    if cleaned.starts_with('-') {
        return Err("must not be negative".into());
    }
    if whole.is_empty() && frac.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > digits
        || whole.len() > 15
    {
        return Err(bad());
    }
    let w: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let f: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<digits$}").parse().map_err(|_| bad())?
    };
    w.checked_mul(10i64.pow(digits as u32))
        .and_then(|v| v.checked_add(f))
        .ok_or_else(bad)
}

pub fn status_label(s: FulfillmentStatus) -> &'static str {
    match s {
        FulfillmentStatus::Pending => "Pending",
        FulfillmentStatus::Picking => "Picking",
        FulfillmentStatus::Packed => "Packed",
        FulfillmentStatus::Shipped => "Shipped",
        FulfillmentStatus::OnHold => "On hold",
        FulfillmentStatus::Cancelled => "Cancelled",
        FulfillmentStatus::PartiallyShipped => "Partially shipped",
        FulfillmentStatus::Rejected => "Rejected",
    }
}

pub fn hold_label(t: HoldType) -> &'static str {
    match t {
        HoldType::Address => "Address",
        HoldType::Payment => "Payment",
        HoldType::Stock => "Stock",
        HoldType::Fraud => "Fraud",
        HoldType::Other => "Other",
    }
}

/// The word people see for each sync state, one per API value: every page,
/// badge and filter says these (README.md and docs/API.md map them, and a
/// test below holds them to it).
pub fn sync_label(s: SyncState) -> &'static str {
    match s {
        SyncState::Pending => "Pending",
        SyncState::Synced => "Synced",
        SyncState::Failing => "Failing",
        SyncState::Dead => "Dead letter",
    }
}

/// What a sync state means, in a few words.
pub fn sync_meaning(s: SyncState) -> &'static str {
    match s {
        SyncState::Pending => "queued; will be sent",
        SyncState::Synced => "the other side has the latest version",
        SyncState::Failing => "the last try failed; it will be retried",
        SyncState::Dead => "given up after retrying",
    }
}

/// What to do about a sync state.
pub fn sync_todo(s: SyncState) -> &'static str {
    match s {
        SyncState::Pending | SyncState::Synced => "nothing",
        SyncState::Failing => "read the last error; fix the other side if it stays failing",
        SyncState::Dead => "fix the cause, then replay it (Sync page or order page)",
    }
}

/// What became of a cancel request, as a badge beside the status (none
/// when the status says it already: a cancelled order is "Cancelled").
pub fn cancel_badge(o: Option<&CancelOutcome>) -> Option<CancelBadge> {
    match o? {
        CancelOutcome::Requested => Some(CancelBadge {
            text: "Cancel requested".to_owned(),
            class: "cancel",
        }),
        CancelOutcome::Cancelled => None,
        CancelOutcome::Refused(reason) => Some(CancelBadge {
            text: format!("Cancel refused: {reason}"),
            class: "cancel-refused",
        }),
    }
}

/// The cancel request's outcome in a sentence (the order page's facts).
pub fn cancel_sentence(o: Option<&CancelOutcome>) -> Option<String> {
    Some(match o? {
        CancelOutcome::Requested => "Cancel requested; waiting for the warehouse's answer".into(),
        CancelOutcome::Cancelled => "Cancelled".into(),
        CancelOutcome::Refused(reason) => format!("Cancel refused: {reason}"),
    })
}

/// A cancel outcome's badge: its text (with a refusal's reason) and CSS
/// modifier.
#[derive(Debug, Clone)]
pub struct CancelBadge {
    pub text: String,
    pub class: &'static str,
}

/// A status badge: its text and its CSS modifier.
#[derive(Debug, Clone)]
pub struct Badge {
    pub text: &'static str,
    pub class: &'static str,
}

impl Badge {
    pub fn status(s: Option<FulfillmentStatus>) -> Badge {
        match s {
            Some(s) => Badge {
                text: status_label(s),
                class: s.as_str(),
            },
            None => Badge {
                text: "Not at warehouse yet",
                class: "none",
            },
        }
    }

    pub fn sync(s: SyncState) -> Badge {
        Badge {
            text: sync_label(s),
            class: match s {
                SyncState::Pending => "sync-pending",
                SyncState::Synced => "sync-synced",
                SyncState::Failing => "sync-failing",
                SyncState::Dead => "sync-dead",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_trip_without_floats() {
        assert_eq!(amount(1999, "GBP"), "19.99");
        assert_eq!(amount(123450, "EUR"), "1,234.50");
        assert_eq!(amount(1500, "JPY"), "1,500");
        assert_eq!(amount(1234, "KWD"), "1.234");
        assert_eq!(parse_amount("19.99", "GBP"), Ok(1999));
        assert_eq!(parse_amount("1,234.5", "GBP"), Ok(123450));
        assert_eq!(parse_amount("20", "GBP"), Ok(2000));
        assert_eq!(parse_amount(".5", "GBP"), Ok(50));
        assert_eq!(parse_amount("1500", "JPY"), Ok(1500));
        assert!(parse_amount("19.999", "GBP").is_err());
        assert!(parse_amount("1.5", "JPY").is_err());
        assert!(parse_amount("-1", "GBP").is_err());
        assert!(parse_amount("abc", "GBP").is_err());
        assert!(parse_amount("", "GBP").is_err());
        assert!(parse_amount("99999999999999999999", "GBP").is_err());
        assert_eq!(amount_input(123450, "EUR"), "1234.50");
    }

    /// README.md and docs/API.md each carry the table of these words; a
    /// row per state, word and API value as here.
    #[test]
    fn the_docs_map_the_sync_words() {
        for (doc, text) in [
            ("README.md", include_str!("../../../README.md")),
            ("docs/API.md", include_str!("../../../docs/API.md")),
        ] {
            for s in SyncState::ALL {
                let row = format!(
                    "| {} | `{}` | {} | {} |",
                    sync_label(s),
                    s.as_str(),
                    sync_meaning(s),
                    sync_todo(s)
                );
                assert!(text.contains(&row), "{doc} lacks the row {row}");
            }
        }
    }

    #[test]
    fn clocks_have_seconds_and_the_date_on_other_days() {
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|e| panic!("{s}: {e}"))
        };
        let now = at("2026-03-04T14:53:20Z");
        assert_eq!(clock(at("2026-03-04T14:53:07.9Z"), now), "14:53:07 UTC");
        assert_eq!(
            clock(at("2026-03-03T23:59:59Z"), now),
            "2026-03-03 23:59:59 UTC"
        );
        assert_eq!(relative(at("2026-03-04T14:53:32Z"), now), "in 12 s");
        assert_eq!(relative(at("2026-03-04T14:50:20Z"), now), "3 min ago");
        assert_eq!(relative(at("2026-03-04T12:48:20Z"), now), "2 h 5 min ago");
        assert_eq!(relative(at("2026-03-04T14:53:20.4Z"), now), "now");
    }

    #[test]
    fn clocks_with_seconds_and_how_far_from_now() {
        let now = 1_767_365_587_000_000; // 2026-01-02 14:53:07 UTC
        assert_eq!(
            clock_and_relative(now + 12_400_000, now),
            ("14:53:19 UTC".to_owned(), "in 12 s".to_owned())
        );
        assert_eq!(clock_and_relative(now + 300_000, now).1, "now");
        assert_eq!(
            clock_and_relative(now - 125_000_000, now),
            ("14:51:02 UTC".to_owned(), "2 min ago".to_owned())
        );
        assert_eq!(
            clock_and_relative(now - 86_400_000_000, now).0,
            "2026-01-01 14:53:07 UTC"
        );
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5 s");
        assert_eq!(age(125), "2 min");
        assert_eq!(age(3 * 3600 + 300), "3 h 5 min");
        assert_eq!(age(2 * 86400 + 4 * 3600), "2 d 4 h");
    }
}
