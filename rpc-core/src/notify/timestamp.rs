//! Timestamps as oslo.messaging writes them: Python's `str(datetime)` of
//! the UTC time, `2026-12-03 09:41:07.123456` (no fraction when it is zero).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in UTC, as Python's `str(timeutils.utcnow())`.
pub(crate) fn now() -> String {
    format(SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default())
}

/// `since_epoch` as Python's `str(datetime)`.
pub(crate) fn format(since_epoch: Duration) -> String {
    let seconds = since_epoch.as_secs();
    let micros = since_epoch.subsec_micros();
    let (year, month, day) = civil_from_days(seconds / 86_400);
    let of_day = seconds % 86_400;
    let (hour, minute, second) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    // Written by hand: `format!` cost more than the rest of a
    // notification's envelope, and a call per field cost a thousand
    // instructions. The year may have more than four digits; every other
    // field has its width.
    let mut text = String::with_capacity(26);
    push_digits(&mut text, year, 4);
    let mut rest = *b"-00-00 00:00:00.000000";
    put_digits(&mut rest[1..3], month);
    put_digits(&mut rest[4..6], day);
    put_digits(&mut rest[7..9], hour);
    put_digits(&mut rest[10..12], minute);
    put_digits(&mut rest[13..15], second);
    put_digits(&mut rest[16..22], u64::from(micros));
    // No fraction when it is zero, as Python writes it.
    let end = if micros == 0 { 15 } else { rest.len() };
    text.push_str(std::str::from_utf8(&rest[..end]).expect("ASCII digits and separators"));
    text
}

/// Writes `value` in decimal across all of `digits`, zero-padded; `value`
/// has at most that many digits.
fn put_digits(digits: &mut [u8], mut value: u64) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Appends `value` in decimal, zero-padded to `width` digits (more digits
/// when it has more, as `{:0width$}` does).
fn push_digits(text: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let (mut rest, mut start) = (value, digits.len());
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    start = start.min(digits.len() - width);
    text.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_python_writes_them() {
        // python3 -c 'import datetime as d; print(d.datetime(1970,1,1) + d.timedelta(seconds=S, microseconds=U))'
        for (seconds, micros, expected) in [
            (0, 0, "1970-01-01 00:00:00"),
            (951_782_400, 0, "2000-02-29 00:00:00"),
            (1_796_290_867, 123_456, "2026-12-03 09:41:07.123456"),
            (1_796_290_867, 5, "2026-12-03 09:41:07.000005"),
            (4_107_542_399, 999_999, "2100-02-28 23:59:59.999999"),
            (4_107_542_400, 0, "2100-03-01 00:00:00"),
            (253_402_300_799, 1, "9999-12-31 23:59:59.000001"),
            (253_402_300_800, 0, "10000-01-01 00:00:00"),
        ] {
            let since_epoch = Duration::from_secs(seconds) + Duration::from_micros(micros);
            assert_eq!(format(since_epoch), expected, "{seconds}s {micros}us");
        }
    }
}
