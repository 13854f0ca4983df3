//! Run results: printed as an aligned table, then as one JSON line whose keys
//! keep the table's order, so runs of different commits can be diffed.

use serde_json::Value;
use std::fmt::Write as _;

/// One line of the table: a section heading or a figure.
enum Row {
    Section(String),
    Figure(String, Value),
}

/// The figures of one run, in the order they were added.
pub(crate) struct Report {
    scenario: String,
    rows: Vec<Row>,
}

impl Report {
    /// An empty report for `scenario`.
    pub(crate) fn new(scenario: &str) -> Report {
        Report {
            scenario: scenario.to_string(),
            rows: Vec::new(),
        }
    }

    /// Starts a table section (not part of the JSON line).
    pub(crate) fn section(&mut self, title: &str) {
        self.rows.push(Row::Section(title.to_string()));
    }

    /// Adds a count.
    pub(crate) fn int(&mut self, key: &str, v: u64) {
        self.rows.push(Row::Figure(key.to_string(), Value::from(v)));
    }

    /// Adds a signed integer figure.
    pub(crate) fn signed(&mut self, key: &str, v: i64) {
        self.rows.push(Row::Figure(key.to_string(), Value::from(v)));
    }

    /// Adds a float figure, rounded to 3 decimals (non-finite values become `null`).
    pub(crate) fn float(&mut self, key: &str, v: f64) {
        let rounded = (v * 1000.0).round() / 1000.0;
        let value = serde_json::Number::from_f64(rounded)
            .map(Value::Number)
            .unwrap_or(Value::Null);
        self.rows.push(Row::Figure(key.to_string(), value));
    }

    /// Adds a string figure.
    pub(crate) fn str(&mut self, key: &str, v: &str) {
        self.rows.push(Row::Figure(key.to_string(), Value::from(v)));
    }

    /// Adds a boolean figure.
    pub(crate) fn bool(&mut self, key: &str, v: bool) {
        self.rows.push(Row::Figure(key.to_string(), Value::from(v)));
    }

    /// The readable table.
    pub(crate) fn to_table(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| match r {
                Row::Figure(k, _) => k.len(),
                Row::Section(_) => 0,
            })
            .max()
            .unwrap_or(0);
        let mut out = format!("== gyre-loadgen {} ==\n", self.scenario);
        for row in &self.rows {
            match row {
                Row::Section(title) => {
                    let _ = writeln!(out, "-- {title}");
                }
                Row::Figure(k, v) => {
                    let shown = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let _ = writeln!(out, "  {k:<width$}  {shown:>14}");
                }
            }
        }
        out
    }

    /// The single-line JSON object: `scenario` first, then every figure in order.
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::from("{\"scenario\":");
        out.push_str(&Value::from(self.scenario.as_str()).to_string());
        for row in &self.rows {
            if let Row::Figure(k, v) = row {
                out.push(',');
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                out.push_str(&v.to_string());
            }
        }
        out.push('}');
        out
    }

    /// Prints the table, a blank line and the JSON line to stdout.
    pub(crate) fn print(&self) {
        println!("{}", self.to_table());
        println!("{}", self.to_json());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_order_and_parses() {
        let mut r = Report::new("demo");
        r.section("s");
        r.int("zeta", 3);
        r.float("alpha", 1.23456);
        r.str("name", "a\"b");
        r.bool("ok", true);
        let line = r.to_json();
        assert_eq!(
            line,
            r#"{"scenario":"demo","zeta":3,"alpha":1.235,"name":"a\"b","ok":true}"#
        );
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["zeta"], 3);
        assert!(r.to_table().contains("zeta"));
    }
}
