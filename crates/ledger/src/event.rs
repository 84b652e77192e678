//! Events: what clients post. Parsed strictly from one JSON object per line into typed values;
//! every refusal names the field and says why.
//!
//! `types` holds the types, `parse` reads a line, `json` prints an event back in its input
//! form; the names of the fields any event may carry are written once, in `parse`.

mod json;
mod parse;
mod types;

pub use parse::parse_event_line;
pub use types::{
    Basis, Benefit, Cause, Event, EventBody, EventError, LINE_BYTES_MAX, MEMO_CHARS_MAX, Route,
};

#[cfg(test)]
mod tests {
    use super::*;

    fn err(line: &str) -> String {
        parse_event_line(line).unwrap_err().to_string()
    }

    #[test]
    fn a_contribution_parses_and_prints_back_the_same() {
        let line = r#"{"id":"c1","type":"contribution","member":"M0001","fund":"medical","period":"2024-03","amount":"92.00","unit":"U01"}"#;
        let event = parse_event_line(line).unwrap();
        let back = serde_json::to_string(&event.to_json()).unwrap();
        assert_eq!(parse_event_line(&back).unwrap(), event);
    }

    #[test]
    fn refusals_name_the_field() {
        let base = r#""id":"c1","type":"contribution","member":"M1","fund":"medical","period":"2024-03","unit":"U1""#;
        assert_eq!(
            err(&format!(r#"{{{base},"amount":"1.234"}}"#)),
            "field \"amount\": more than two decimals"
        );
        assert!(err(&format!(r#"{{{base},"amount":92.5}}"#)).starts_with("field \"amount\""));
        assert!(err(&format!(r#"{{{base},"amount":92}}"#)).contains("JSON string"));
        assert_eq!(err(&format!("{{{base}}}")), "field \"amount\": is required");
        assert!(err(&format!(r#"{{{base},"amount":"1","ammount":"1"}}"#)).contains("ammount"));
        assert!(err(&format!(r#"{{{base},"amount":"1","grade":3}}"#)).contains("\"grade\""));
        assert!(err(r#"{"id":"x","type":"bogus"}"#).contains("unknown event type"));
        assert!(err("not json").starts_with("not a JSON object"));
    }

    #[test]
    fn spouse_fund_needs_a_part_and_others_refuse_one() {
        let l = r#"{"id":"s","type":"contribution","member":"S1","fund":"spouse","period":"2024-03","amount":"1","unit":"U"}"#;
        assert!(err(l).contains("\"part\""));
        let l = r#"{"id":"s","type":"contribution","member":"S1","fund":"medical","period":"2024-03","amount":"1","unit":"U","part":"medical"}"#;
        assert!(err(l).contains("only for the spouse fund"));
    }
}
