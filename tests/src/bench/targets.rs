//! Issue 12's targets next to what one run measured: one table, each row the target, the
//! measured value, its ratio to the target and the distance, and met / not met.
//! A benchmark's verdict, printed — never an assertion.

/// Which side of the limit meets the target.
#[derive(Clone, Copy)]
pub enum Goal {
    AtMost(f64),
    AtLeast(f64),
}

pub struct Target {
    pub name: String,
    pub goal: Goal,
    /// Unit printed after numbers: "µs", "ms", "MiB", "s" or "×" (a same-run ratio).
    pub unit: &'static str,
    /// None when the run could not measure it (the note says why).
    pub measured: Option<f64>,
    pub note: String,
}

impl Target {
    pub fn at_most(name: &str, limit: f64, unit: &'static str, measured: Option<f64>) -> Target {
        Target { name: name.into(), goal: Goal::AtMost(limit), unit, measured, note: String::new() }
    }

    pub fn at_least(name: &str, limit: f64, unit: &'static str, measured: Option<f64>) -> Target {
        Target { name: name.into(), goal: Goal::AtLeast(limit), unit, measured, note: String::new() }
    }

    /// Context printed in the last column (what the value is made of).
    pub fn note(mut self, note: impl Into<String>) -> Target {
        self.note = note.into();
        self
    }

    fn limit(&self) -> f64 {
        match self.goal {
            Goal::AtMost(l) | Goal::AtLeast(l) => l,
        }
    }

    fn met(&self) -> Option<bool> {
        let v = self.measured?;
        Some(match self.goal {
            Goal::AtMost(l) => v <= l,
            Goal::AtLeast(l) => v >= l,
        })
    }

    fn goal_text(&self) -> String {
        let op = match self.goal {
            Goal::AtMost(_) => "≤",
            Goal::AtLeast(_) => "≥",
        };
        format!("{op} {}", value(self.limit(), self.unit))
    }

    /// "5.92× the limit, +73.8 µs": how far from the limit, both ways of saying it.
    fn distance(&self) -> String {
        let Some(v) = self.measured else { return "—".into() };
        let limit = self.limit();
        let ratio = if limit != 0.0 { format!("{:.2}× the limit, ", v / limit) } else { String::new() };
        let d = v - limit;
        let sign = if d >= 0.0 { "+" } else { "−" };
        format!("{ratio}{sign}{}", value(d.abs(), self.unit))
    }
}

fn value(v: f64, unit: &str) -> String {
    match unit {
        "×" => format!("{v:.2}×"),
        "µs" | "MiB" => format!("{v:.1} {unit}"),
        _ => format!("{v:.2} {unit}"),
    }
}

/// The table, markdown-shaped so it can be pasted as it is.
pub fn print(targets: &[Target]) {
    println!("\n== issue 12 targets ==");
    println!("| target | goal | measured | vs goal | met? | measured as |");
    println!("|---|---|---|---|---|---|");
    for t in targets {
        let measured = t.measured.map(|v| value(v, t.unit)).unwrap_or_else(|| "not measured".into());
        let met = match t.met() {
            Some(true) => "met",
            Some(false) => "NOT MET",
            None => "—",
        };
        println!("| {} | {} | {measured} | {} | {met} | {} |", t.name, t.goal_text(), t.distance(), t.note);
    }
}
