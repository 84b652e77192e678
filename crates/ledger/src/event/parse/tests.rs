//! The fast path against serde: on every line the fast path takes it gives the fields serde
//! gives, so the same event or the same refusal; every other line it leaves to serde.

use proptest::prelude::*;

use super::flat::{self, FlatFields};
use super::{F, Fields, RAW_FIELDS, RawEvent, parse_event_line, parse_fields, parse_with_serde};
use crate::event::{Event, EventError};

/// One valid line of every event type, and some refused ones, to mutate.
const TEMPLATES: &[&str] = &[
    r#"{"id":"c-1-0","type":"contribution","member":"M0000001","fund":"medical","period":"2014-01","amount":"100.00","unit":"U001"}"#,
    r#"{"id":"s","type":"contribution","member":"S1","fund":"spouse","period":"2024-03","amount":"1","unit":"U","part":"medical","value_date":"2024-03-31","memo":"spouse, medical part"}"#,
    r#"{"id":"enroll-7","type":"enroll","member":"M0000007","category":"officer","unit":"U007","enlisted_on":"2014-01-01","monthly_pay":"10000.00"}"#,
    r#"{"id":"e2","type":"enroll","member":"P1","category":"spouse","unit":"U1","enlisted_on":"2020-05-01","monthly_pay":"4000","sponsor":"O1"}"#,
    r#"{"id":"late-match","type":"subsidy","member":"O1","fund":"medical","period":"2026-01","amount":"92.00","basis":"match"}"#,
    r#"{"id":"a","type":"appropriation","fund":"casualty","amount":"1000000.00","value_date":"2025-01-02"}"#,
    r#"{"id":"b","type":"payout","member":"S1","fund":"casualty","benefit":"disability","amount":"183015.00","cause":"on_duty","grade":"6","on":"2025-06-01"}"#,
    r#"{"id":"b","type":"payout","member":"S1","fund":"casualty","benefit":"disability","amount":"183015.00","cause":"on_duty","grade":6,"on":"2025-06-01"}"#,
    r#"{"id":"i","type":"interest","fund":"medical","period":"2025-12","rate":"1.5"}"#,
    r#"{"id":"d","type":"discharge","member":"M0000000","on":"2026-01-31","route":"employee"}"#,
    r#"{"id":"uc","type":"unit_change","member":"O1","unit":"U2","on":"2024-03-01"}"#,
    r#"{"id":"x","type":"death","member":"O1","on":"2024-03-01","cause":"illness"}"#,
    r#"{"id":"cc","type":"category_change","member":"O1","category":"civilian_cadre","on":"2024-03-01"}"#,
    r#"{"id":"s","type":"suspend","member":"P1","fund":"spouse","from":"2025-04","reason":"refused placement"}"#,
    r#"{"id":"r","type":"resume","member":"P1","fund":"spouse","from":"2025-07","reason":"accepted training"}"#,
    r#"{"id":"r","type":"recovery","member":"S1","fund":"casualty","amount":"15.00","of":"p","reason":"overpayment returned (Art. 47)"}"#,
    r#"{"id":"r","type":"reversal","of":"c2","reason":"wrong month"}"#,
    r#"{"id":"s","type":"standard","name":"medical_personal_rate","value":"1","effective_from":"2012-07-01"}"#,
    r#"{"id":"bp","type":"backpay","member":"V001","enlisted_on":"2000-12-01","discharged_on":"2005-12-01","service_months":"60","gap_months":"48","civilian_months":"60","average_wage":"9000.00","pension_unit_rate":"16","pension_personal_rate":"8","medical_unit_rate":"6","medical_personal_rate":"2","payer":"fiscal","central_share":"50","provincial_share":"50","resettlement":"government_job","category":"conscript","medical_average_wage":"9000.00","medical_gap_months":"48"}"#,
    r#"{"id":"bp","type":"backpay","member":"V001","enlisted_on":"2000-12-01","discharged_on":"2005-12-01","service_months":60,"gap_months":48,"civilian_months":60,"retirement_age_reached":true,"average_wage":"9000.00","pension_unit_rate":"16","pension_personal_rate":"8","medical_unit_rate":"6","medical_personal_rate":"2","payer":"unit","resettlement":"government_job","category":"conscript","medical_average_wage":"9000.00","medical_gap_months":48}"#,
    r#"{"id":"pc","type":"pay_change","member":"O1","monthly_pay":"11000.00","on":"2022-03-15"}"#,
    r#"{"id":"key-rotation:2","type":"key_rotation","public_key":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","signature":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}"#,
    r#"{"id":"t","type":"transfer_out","member":"C1","fund":"spouse","agency":"SI-1","part":"pension"}"#,
    r#"{"id":"U1:t","type":"transfer_confirmed","member":"M1","fund":"medical","agency":"A1"}"#,
    r#"{"id":"ti","type":"transfer_in","member":"M1","fund":"pension","agency":"SI-1","amount":"0.00"}"#,
    r#"{"id":"b","type":"budget","fund":"casualty","year":"2025","line":"benefits","amount":"1000000.00"}"#,
    r#"{"id":"r","type":"remittance","unit":"U1","fund":"medical","amount":"92.00","period":"2025-11","reference":"slip","value_date":"2025-12-10"}"#,
    r#"{"id":"bs","type":"bank_statement","fund":"casualty","account":"ICBC-JB-0001","date":"2025-12-31","balance":"-12.50","reference":"stmt 12"}"#,
    r#"{"id":"depint","type":"deposit_interest","fund":"casualty","amount":"12345.67","period":"2025-12"}"#,
    r#"{"id":"yc","type":"year_close","year":"2025"}"#,
    r#" { "id" : "ws" ,	"type":"appropriation" ,"fund":"pension","amount":"5"
 } "#,
    r#"{}"#,
];

/// What the fast path makes of `line`: `None` when it leaves the line to serde.
fn fast(line: &str) -> Option<Result<Event, EventError>> {
    let mut fields = FlatFields::new();
    flat::scan(line, &mut fields).map(|()| parse_fields(&fields))
}

/// The fast path and serde agree on `line`, field by field and on the outcome, and
/// `parse_event_line` answers what serde answers.
fn check_agreement(line: &str) -> Result<(), TestCaseError> {
    let serde = parse_with_serde(line);
    prop_assert_eq!(&parse_event_line(line), &serde, "line {:?}", line);
    let mut fields = FlatFields::new();
    if flat::scan(line, &mut fields).is_some() {
        let raw: RawEvent<'_> = serde_json::from_str(line)
            .map_err(|e| TestCaseError::fail(format!("serde refuses {line:?}: {e}")))?;
        prop_assert_eq!(fields.present(), raw.present(), "line {:?}", line);
        for &f in F::ALL {
            prop_assert_eq!(fields.value(f), raw.value(f), "field {:?} of {:?}", f, line);
        }
        prop_assert_eq!(&parse_fields(&fields), &serde, "line {:?}", line);
    }
    Ok(())
}

#[test]
fn every_template_of_plain_strings_takes_the_fast_path_and_agrees() {
    for line in TEMPLATES {
        check_agreement(line).unwrap();
        let plain = !line.contains(":6,") && !line.contains(":60,");
        assert_eq!(fast(line).is_some(), plain, "{line}");
    }
    // The bench's premium is read without serde, and is valid.
    assert!(matches!(fast(TEMPLATES[0]), Some(Ok(_))));
}

#[test]
fn the_fast_path_leaves_every_other_shape_to_serde() {
    let declined = [
        // escapes, which serde unescapes
        r#"{"id":"a\"b","type":"appropriation","fund":"pension","amount":"5"}"#,
        r#"{"\u0069d":"a","type":"appropriation","fund":"pension","amount":"5"}"#,
        // values that are not strings
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":5}"#,
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":null}"#,
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":["5"]}"#,
        // an unknown or repeated key
        r#"{"id":"a","type":"appropriation","fund":"pension","ammount":"5"}"#,
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":"5","id":"b"}"#,
        // not JSON, or more than one value
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":"5",}"#,
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":"5"}}"#,
        r#"{"id":"a","type":"appropriation","fund":"pension","amount":"5"} x"#,
        "{\"id\":\"a\u{1}\",\"type\":\"appropriation\"}",
        "\u{feff}{}",
        r#"["a","appropriation"]"#,
        "",
        "{",
    ];
    for line in declined {
        assert!(fast(line).is_none(), "{line}");
        check_agreement(line).unwrap();
    }
}

/// Characters that matter to JSON, to serde's reading of it or to the fields' values.
const INSERTED_CHARS: &[char] = &[
    '{', '}', '[', ']', '"', ':', ',', '\\', ' ', '\t', '\n', '\r', '\u{0}', '\u{b}', '\u{c}',
    '\u{1f}', '\u{7f}', '\u{a0}', '0', '1', '5', '9', '.', '-', 'e', 'a', 'x', '_', '中',
    '\u{feff}',
];

/// Fields a type may or may not take, repeated or unknown ones, escapes and other values.
const INSERTED_TEXTS: &[&str] = &[
    r#""memo":"x","#,
    r#""grade":"3","#,
    r#""part":"medical","#,
    r#""part":"pension","#,
    r#""value_date":"2025-01-01","#,
    r#""ammount":"1","#,
    r#""id":"dup","#,
    r#""type":"enroll","#,
    r#""sponsor":"O1","#,
    r#""amount":"0","#,
    r#""fund":"spouse","#,
    r#"\""#,
    r#"\u0041"#,
    "null",
    "true",
    "12",
    "1.5",
];

/// A template edited: (position, what) pairs applied in turn, positions taken modulo the
/// length.
fn mutated_line() -> impl Strategy<Value = String> {
    let edit = prop_oneof![
        (any::<usize>(), prop::sample::select(INSERTED_CHARS))
            .prop_map(|(at, c)| Edit::Insert(at, c.to_string())),
        (any::<usize>(), prop::sample::select(INSERTED_TEXTS))
            .prop_map(|(at, s)| Edit::Insert(at, s.to_string())),
        (any::<usize>(), 1..8usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), any::<usize>()).prop_map(|(at, to)| Edit::Swap(at, to)),
    ];
    (prop::sample::select(TEMPLATES), prop::collection::vec(edit, 0..4)).prop_map(
        |(template, edits)| {
            let mut chars: Vec<char> = template.chars().collect();
            for edit in edits {
                let len = chars.len();
                match edit {
                    Edit::Insert(at, s) => {
                        let at = at % (len + 1);
                        chars.splice(at..at, s.chars());
                    }
                    Edit::Delete(at, n) => {
                        let at = at % (len + 1);
                        chars.drain(at..(at + n).min(len));
                    }
                    Edit::Swap(a, b) => {
                        if len > 0 {
                            chars.swap(a % len, b % len);
                        }
                    }
                }
            }
            chars.into_iter().collect()
        },
    )
}

#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, String),
    Delete(usize, usize),
    Swap(usize, usize),
}

/// Field values that a rule accepts somewhere, and some it refuses.
const VALUES: &[&str] = &[
    "contribution",
    "enroll",
    "subsidy",
    "appropriation",
    "payout",
    "interest",
    "discharge",
    "unit_change",
    "death",
    "category_change",
    "suspend",
    "resume",
    "recovery",
    "reversal",
    "standard",
    "backpay",
    "pay_change",
    "key_rotation",
    "transfer_out",
    "transfer_confirmed",
    "transfer_in",
    "budget",
    "remittance",
    "bank_statement",
    "deposit_interest",
    "year_close",
    "2024-03",
    "2024-13",
    "2025-12-31",
    "2014-01-01",
    "2024-02-30",
    "100.00",
    "0",
    "0.00",
    "-1",
    "1.234",
    "92",
    "1e3",
    "medical",
    "pension",
    "spouse",
    "casualty",
    "officer",
    "conscript",
    "spouse",
    "U1",
    "M1",
    "S1",
    "SI-1",
    "",
    " ",
    "match",
    "standard",
    "death",
    "disability",
    "on_duty",
    "martyr",
    "employee",
    "retirement",
    "unit",
    "fiscal",
    "5",
    "60",
    "1200",
    "1201",
    "3",
    "11",
    "benefits",
    "ICBC-1",
    "government_job",
    "medical_personal_rate",
    "中文",
    "a b",
    "\u{7f}",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
];

/// A JSON value as text: mostly strings, sometimes another kind of value.
fn json_value() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(VALUES).prop_map(|v| serde_json::to_string(v).unwrap()),
        2 => "[ -~]{0,12}".prop_map(|v| serde_json::to_string(&v).unwrap()),
        1 => prop::sample::select(&["12", "-3", "1.5", "true", "false", "null", "[]", "{}", "1e2"][..])
            .prop_map(str::to_string),
    ]
}

/// A JSON key as text: mostly a field's name.
fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => prop::sample::select(RAW_FIELDS).prop_map(|k| format!("\"{k}\"")),
        1 => prop::sample::select(&["ammount", "kind", "Type", "", "id "][..])
            .prop_map(|k| format!("\"{k}\"")),
        1 => Just(r#""\u0069d""#.to_string()),
    ]
}

/// A template's fields with some values replaced, some fields dropped and some added, in
/// their order or shuffled, laid out with random whitespace.
fn random_object() -> impl Strategy<Value = String> {
    let members = prop::sample::select(TEMPLATES)
        .prop_flat_map(|template| {
            // Keys in sorted order: the map is a BTreeMap. A template that is not an object
            // gives no members.
            let members: Vec<(String, String)> =
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(template)
                    .map(|m| {
                        m.into_iter()
                            .map(|(k, v)| (serde_json::to_string(&k).unwrap(), v.to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
            let n = members.len();
            (
                Just(members),
                prop::collection::vec((0..12u8, json_value()), n),
                prop::collection::vec((json_key(), json_value()), 0..3),
            )
        })
        .prop_map(|(members, changes, added)| {
            let mut out: Vec<(String, String)> = Vec::new();
            for ((key, value), (change, other)) in members.into_iter().zip(changes) {
                match change {
                    0 | 1 => out.push((key, other)),
                    2 => {}
                    _ => out.push((key, value)),
                }
            }
            out.extend(added);
            out
        });
    let members = prop_oneof![members.clone(), members.prop_shuffle()];
    let whitespace =
        prop::sample::select(&["", "", "", " ", "\n", "\t ", "\r\n", "\u{c}", "\u{a0}"][..]);
    (members, whitespace.clone(), whitespace).prop_map(|(members, ws, around)| {
        let members: Vec<String> =
            members.into_iter().map(|(k, v)| format!("{k}{ws}:{ws}{v}")).collect();
        format!("{around}{{{ws}{}{ws}}}{around}", members.join(&format!("{ws},{ws}")))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_and_serde_agree_on_mutated_lines(line in mutated_line()) {
        check_agreement(&line)?;
    }

    #[test]
    fn fast_path_and_serde_agree_on_random_objects(line in random_object()) {
        check_agreement(&line)?;
    }

    #[test]
    fn fast_path_and_serde_agree_on_random_text(line in "[ -~]{0,80}") {
        check_agreement(&line)?;
    }
}
