//! Loads a CSV file of events and runs a 5-step ordered funnel on it, timing both.
//!
//! Run with: `cargo run --release -p mia-analytics --example funnel_csv -- events.csv`
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use mia_analytics::funnel::{self, CsvOptions, EventTable, FunnelSpec};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: funnel_csv FILE.csv (header user_id,event,ts)")?;
    let started = Instant::now();
    let options = CsvOptions {
        keep_columns: Some(Vec::new()),
        ..CsvOptions::default()
    };
    let table = EventTable::from_csv_bytes(&std::fs::read(&path)?, &options)?;
    let loaded = started.elapsed();
    let spec = FunnelSpec::new(["sent", "delivered", "read", "clicked", "converted"])
        .window(Duration::from_secs(7 * 86_400));
    let started = Instant::now();
    let result = funnel::run(&table, &spec)?;
    let queried = started.elapsed();
    for step in &result.steps {
        println!("{:>12} {}", step.name, step.count);
    }
    println!(
        "{} events, {} users: load {:.3} s, query {:.3} s",
        table.len(),
        table.user_count(),
        loaded.as_secs_f64(),
        queried.as_secs_f64()
    );
    Ok(())
}
