//! Whether a JSON number means, to the filter's engine, what it says.
//!
//! OPA compares JSON numbers as exact decimals; regorus holds integers exactly but
//! every other number as an `f64`. `1000.00000000000001` is therefore above a limit of
//! 1000 for OPA and equal to it for regorus, and a policy tested with OPA would allow a
//! bulk read meant for approval. A body carrying such a number is refused instead:
//! a number is accepted only when the value regorus reads from it, printed back, has
//! the same decimal value as its text (`0.1`, `1.50`, `1e3` pass; `1000.0000000000001`
//! and integers beyond 64 bits that lose digits do not).

/// `true` when `text` (a JSON number token) keeps its exact value in the filter's engine.
pub fn exact_in_engine(text: &str) -> bool {
    // regorus's own reading of the token, which rounds more than a plain f64 parse
    // would (1000.0000000000001 reads as 1000).
    regorus::Value::from_json_str(text).is_ok_and(|value| held_exactly(text, &value))
}

/// `true` when `value`, the engine's reading of the number token `text`, printed back
/// has the same decimal value as `text`.
pub fn held_exactly(text: &str, value: &regorus::Value) -> bool {
    let Some(written) = Decimal::parse(text) else { return false };
    let Ok(held) = serde_json::to_string(value) else { return false };
    Decimal::parse(&held).is_some_and(|held| held == written)
}

/// A decimal as sign, significant digits (no leading or trailing zeros) and the power
/// of ten of the last digit. Zero is `(false, "", 0)` whatever its sign.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], rest[i + 1..].trim_start_matches('+').parse::<i64>().ok()?),
            None => (rest, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let all = format!("{int}{frac}");
        let exponent = exp.checked_sub(i64::try_from(frac.len()).ok()?)?;
        let trimmed = all.trim_start_matches('0');
        let digits = trimmed.trim_end_matches('0');
        if digits.is_empty() {
            return Some(Decimal { negative: false, digits: String::new(), exponent: 0 });
        }
        let dropped = i64::try_from(trimmed.len() - digits.len()).ok()?;
        Some(Decimal { negative, digits: digits.to_string(), exponent: exponent.checked_add(dropped)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_the_engine_holds_exactly_pass() {
        for n in
            ["0", "-0", "1", "-17", "1000", "0.1", "1.50", "1e3", "1E+3", "2.5e-3", "18446744073709551615", "1e308"]
        {
            assert!(exact_in_engine(n), "{n}");
        }
    }

    #[test]
    fn numbers_that_lose_digits_are_refused() {
        for n in [
            "1000.00000000000001",
            "1000.0000000000001",
            "0.30000000000000001",
            "123456789012345678901234567890",
            "1e400",
            "-1e400",
        ] {
            assert!(!exact_in_engine(n), "{n}");
        }
    }
}
