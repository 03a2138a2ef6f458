//! Tests of the CSV loader.
#![allow(clippy::unwrap_used, clippy::panic)]
use super::*;

fn load(text: &str) -> Result<EventTable> {
    EventTable::from_csv(text.as_bytes())
}

fn error_line(text: &str) -> (u64, String) {
    match load(text) {
        Err(AnalyticsError::Csv { line, message }) => (line, message),
        other => panic!("expected a CSV error, got {other:?}"),
    }
}

#[test]
fn columns_may_come_in_any_order_with_extras_and_crlf() {
    let t = load("ts,variant,user_id,event\r\n5,A,u1,sent\r\n\r\n7,B,u1,read\r\n").unwrap();
    assert_eq!(t.user_events("u1").unwrap(), [("sent", 5), ("read", 7)]);
    let variant = &t.event_columns()[0];
    assert_eq!(variant.name(), "variant");
    assert_eq!(variant.dictionary(), ["A", "B"]);
}

#[test]
fn quoted_fields_are_read_per_rfc_4180() {
    let t = load("user_id,event,ts,note\n\"u,1\",\"sent\",1,\"a \"\"b\"\"\nc\"\nu2,read,2,x\n")
        .unwrap();
    assert_eq!(t.user_events("u,1").unwrap(), [("sent", 1)]);
    assert_eq!(t.user_events("u2").unwrap(), [("read", 2)]);
    assert_eq!(t.event_columns()[0].dictionary(), ["a \"b\"\nc", "x"]);
}

#[test]
fn errors_name_the_line() {
    assert_eq!(error_line("user_id,event\nu,sent\n").0, 1);
    assert!(error_line("user_id,event\nu,sent\n").1.contains("\"ts\""));
    let (line, message) = error_line("user_id,event,ts\nu,sent,1\nu,read,yesterday\n");
    assert_eq!(line, 3);
    assert!(message.contains("yesterday"), "{message}");
    assert_eq!(error_line("user_id,event,ts\nu,sent,1\n\nu,read\n").0, 4);
    assert_eq!(error_line("user_id,event,ts\n,sent,1\n").0, 2);
    assert_eq!(error_line("user_id,event,ts\nu,,1\n").0, 2);
    // Quoted path: the line count includes line breaks inside quotes.
    let (line, _) = error_line("user_id,event,ts\n\"u\nv\",sent,1\nu,read,x\n");
    assert_eq!(line, 4);
    assert_eq!(error_line("user_id,event,ts\n\"u,sent,1\n").0, 2);
    assert_eq!(error_line("").0, 1);
    assert_eq!(error_line("user_id,event,ts\nu,sent,1\n\u{0}\u{ff}").0, 3);
}

#[test]
fn invalid_utf8_is_refused_with_its_line() {
    let bytes = b"user_id,event,ts\nu,sent,1\nu,\xff,2\n";
    match EventTable::from_csv(&bytes[..]) {
        Err(AnalyticsError::Csv { line, .. }) => assert_eq!(line, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_big_file_parsed_in_parallel_matches_a_sequential_parse() {
    let mut text = String::from("user_id,event,ts,variant\n");
    for i in 0..60_000u64 {
        text.push_str(&format!(
            "u{},e{},{},v{}\n",
            i % 977,
            i % 7,
            i * 13 % 100_003,
            i % 3
        ));
    }
    let one = EventTable::from_csv_with(
        text.as_bytes(),
        &CsvOptions {
            threads: 1,
            ..CsvOptions::default()
        },
    )
    .unwrap();
    let four = EventTable::from_csv_with(
        text.as_bytes(),
        &CsvOptions {
            threads: 4,
            ..CsvOptions::default()
        },
    )
    .unwrap();
    assert_eq!(one.len(), 60_000);
    for u in ["u0", "u5", "u976"] {
        assert_eq!(one.user_events(u), four.user_events(u));
    }
    assert_eq!(one.event_columns(), four.event_columns());
    // An error deep in a later slice still names its line.
    let mut bad = text.clone();
    bad.push_str("u1,e1,oops\n");
    let options = CsvOptions {
        threads: 4,
        ..CsvOptions::default()
    };
    match EventTable::from_csv_with(bad.as_bytes(), &options) {
        Err(AnalyticsError::Csv { line, .. }) => assert_eq!(line, 60_002),
        other => panic!("{other:?}"),
    }
}

#[test]
fn keep_columns_loads_only_those() {
    let options = CsvOptions {
        keep_columns: Some(vec!["b".into()]),
        ..CsvOptions::default()
    };
    let t = EventTable::from_csv_with(&b"user_id,event,ts,a,b\nu,e,1,x,y\n"[..], &options).unwrap();
    assert_eq!(t.event_columns().len(), 1);
    assert_eq!(t.event_columns()[0].name(), "b");
    let options = CsvOptions {
        keep_columns: Some(vec!["c".into()]),
        ..CsvOptions::default()
    };
    assert!(EventTable::from_csv_with(&b"user_id,event,ts\nu,e,1\n"[..], &options).is_err());
}
