//! Durations as people write them in runbooks: `500ms`, `30s`, `2m`, `1h30m`, or seconds.

use std::time::Duration;

/// Parses `500ms`, `30s`, `2m`, `1h`, `1m30s`, `1.5s`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration: expected e.g. `30s`, `2m` or `500ms`".into());
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds_to_duration(seconds, text);
    }
    let mut total = 0.0_f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err(format!(
                "invalid duration `{text}`: expected e.g. `30s`, `2m` or `500ms`"
            ));
        }
        let number: f64 = rest[..number_len]
            .parse()
            .map_err(|_| format!("invalid number in duration `{text}`"))?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" | "sec" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            unit => {
                return Err(format!(
                    "invalid unit `{unit}` in duration `{text}`: use `ms`, `s`, `m` or `h`"
                ));
            }
        };
        total += number * factor;
        rest = &rest[unit_len..];
    }
    seconds_to_duration(total, text)
}

fn seconds_to_duration(seconds: f64, text: &str) -> Result<Duration, String> {
    if !seconds.is_finite() || !(0.0..=31_536_000.0).contains(&seconds) {
        return Err(format!("duration `{text}` is out of range (0 to a year)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(
            parse_duration("5 parsecs")
                .unwrap_err()
                .contains("invalid unit")
        );
        assert!(parse_duration("-1").unwrap_err().contains("out of range"));
        assert!(
            parse_duration("abc")
                .unwrap_err()
                .contains("invalid duration")
        );
    }
}
