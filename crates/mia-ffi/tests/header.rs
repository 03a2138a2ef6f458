//! The committed `include/mia.h` is what cbindgen makes of the code today.
//!
//! Regenerate it after changing the C API with `MIA_FFI_BLESS=1 cargo test -p mia-ffi --test
//! header`, and commit it with the change.

#![allow(clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::path::Path;

fn generate() -> String {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("cbindgen.toml parses");
    // Parsing the sources directly (not `with_crate`) needs no `cargo metadata` run.
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen understands the crate");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("the header is UTF-8")
}

/// The lines that differ, with line numbers, for the failure message.
fn differences(committed: &str, generated: &str) -> String {
    let old: Vec<&str> = committed.lines().collect();
    let new: Vec<&str> = generated.lines().collect();
    let mut report = String::new();
    let mut shown = 0;
    for i in 0..old.len().max(new.len()) {
        let (a, b) = (old.get(i), new.get(i));
        if a != b {
            let _ = writeln!(report, "line {}:", i + 1);
            if let Some(a) = a {
                let _ = writeln!(report, "  - {a}");
            }
            if let Some(b) = b {
                let _ = writeln!(report, "  + {b}");
            }
            shown += 1;
            if shown == 20 {
                let _ = writeln!(report, "  ... (more differences not shown)");
                break;
            }
        }
    }
    report
}

#[test]
fn committed_header_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/mia.h");
    let generated = generate();
    if std::env::var_os("MIA_FFI_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write include/mia.h");
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        panic!(
            "include/mia.h is out of date with the Rust code (- committed, + generated):\n{}\n\
             Regenerate it with `MIA_FFI_BLESS=1 cargo test -p mia-ffi --test header` and commit it.",
            differences(&committed, &generated)
        );
    }
}

#[test]
fn the_header_declares_every_exported_function() {
    let header = generate();
    for function in [
        "mia_agent_new",
        "mia_agent_free",
        "mia_agent_run",
        "mia_agent_set_event_callback",
        "mia_agent_set_review_callback",
        "mia_contact_import",
        "mia_consent_record",
        "mia_inbound_record",
        "mia_campaign_create",
        "mia_campaign_launch",
        "mia_campaign_report",
        "mia_review_list",
        "mia_review_approve",
        "mia_review_edit",
        "mia_review_reject",
        "mia_scan_text",
        "mia_bandit_new",
        "mia_bandit_assign",
        "mia_bandit_reward",
        "mia_bandit_stats",
        "mia_bandit_free",
        "mia_last_error",
        "mia_status_name",
        "mia_string_free",
        "mia_version",
    ] {
        let declared = [" ", "*"]
            .iter()
            .any(|before| header.contains(&format!("{before}{function}(")));
        assert!(declared, "{function} is missing from the generated header");
    }
    for code in ["MIA_OK = 0", "MIA_CLOSED_HANDLE = 5", "MIA_PANIC = 6"] {
        assert!(header.contains(code), "{code} is missing from the header");
    }
}
