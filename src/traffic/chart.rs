//! Small terminal charts for split checks.

/// `[========(=| )              ] 25% configured, 24.3% observed (20%–29%)`: `=` up to the
/// observed share, `(` `)` around its confidence interval, `|` at the configured share.
pub fn share_bar(expected: f64, observed: f64, low: f64, high: f64, width: usize) -> String {
    let clamp = |v: f64| {
        if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    let position =
        |v: f64| ((clamp(v) * width as f64).round() as usize).min(width.saturating_sub(1));
    let filled = (clamp(observed) * width as f64).round() as usize;
    let mut cells: Vec<char> = (0..width)
        .map(|i| if i < filled { '=' } else { ' ' })
        .collect();
    if width > 0 {
        cells[position(low)] = '(';
        cells[position(high)] = ')';
        cells[position(expected)] = '|';
    }
    format!(
        "[{}] {} configured, {} observed ({}–{})",
        cells.into_iter().collect::<String>(),
        percent(expected),
        percent(observed),
        percent(low),
        percent(high)
    )
}

/// `25%`, `24.3%`.
pub fn percent(share: f64) -> String {
    let value = share * 100.0;
    if (value - value.round()).abs() < 0.05 {
        format!("{:.0}%", value)
    } else {
        format!("{value:.1}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_mark_expected_observed_and_interval() {
        assert_eq!(
            share_bar(0.25, 0.243, 0.20, 0.29, 20),
            "[====(|)             ] 25% configured, 24.3% observed (20%–29%)"
        );
        assert_eq!(
            share_bar(1.0, 1.0, 0.98, 1.0, 10),
            "[=========|] 100% configured, 100% observed (98%–100%)"
        );
        assert_eq!(
            share_bar(0.1, 0.0, 0.0, 0.03, 10),
            "[)|        ] 10% configured, 0% observed (0%–3%)"
        );
    }
}
