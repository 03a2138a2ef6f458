//! `mia scan`: personal data and the content verdict for every line of a file or of
//! standard input, as JSON lines.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use mia::safety::scan::{LineScanner, phrase_list};
use mia::safety::{ContentGuard, Redaction, Scanner};
use mia::{Error, Result};

/// How `--redact` replaces personal data.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedactMode {
    /// Letters and digits become `*`.
    Mask,
    /// A salted SHA-256 tag: `<PHONE:3f2a…>` (see `--salt`).
    Hash,
    /// The kind only: `<EMAIL>`.
    Tag,
}

/// Flags of `mia scan`.
#[derive(clap::Args, Debug, Clone)]
pub(crate) struct ScanArgs {
    /// JSON lines `{"id": "...", "text": "..."}` or plain text lines; standard input when
    /// absent or `-`.
    pub(crate) input: Option<PathBuf>,
    /// A file of blacklisted phrases, one per line (`#` starts a comment line).
    #[arg(long, value_name = "FILE")]
    pub(crate) blacklist: Option<PathBuf>,
    /// A domain links may point to (repeatable); others escalate.
    #[arg(long = "allow-domain", value_name = "DOMAIN")]
    pub(crate) allow_domain: Vec<String>,
    /// Language or locale of the messages (`de`, `pt-BR`): decides how national phone numbers
    /// are read. A line's own `"locale"` field wins.
    #[arg(long)]
    pub(crate) locale: Option<String>,
    /// Adds a `"redacted"` field with personal data replaced.
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) redact: Option<RedactMode>,
    /// The secret salt of `--redact hash`.
    #[arg(long, default_value = "")]
    pub(crate) salt: String,
    /// Do not require an opt-out notice in every text.
    #[arg(long)]
    pub(crate) no_opt_out_notice: bool,
}

/// Runs `mia scan`: one JSON object per non-empty input line on standard output.
pub(crate) fn run(args: &ScanArgs) -> Result<()> {
    let mut guard = ContentGuard::builder()
        .allow_domains(args.allow_domain.iter().cloned())
        .opt_out_notice(!args.no_opt_out_notice);
    if let Some(path) = &args.blacklist {
        let contents = std::fs::read_to_string(path)
            .map_err(|e| Error::invalid(format!("cannot read {}: {e}", path.display())))?;
        guard = guard.blacklist(phrase_list(&contents));
    }
    let mut scanner = Scanner::builder();
    if let Some(locale) = &args.locale {
        scanner = scanner.locale(locale.clone());
    }
    let redaction = args.redact.map(|mode| match mode {
        RedactMode::Mask => Redaction::Mask,
        RedactMode::Hash => Redaction::hash(args.salt.clone()),
        RedactMode::Tag => Redaction::Tag,
    });
    let lines = LineScanner::new(guard.build()?, scanner.build()?)
        .with_locale(args.locale.clone())
        .with_redaction(redaction);

    let input: Box<dyn BufRead> = match &args.input {
        Some(path) if path.as_os_str() != "-" => {
            Box::new(BufReader::new(File::open(path).map_err(|e| {
                Error::invalid(format!("cannot open {}: {e}", path.display()))
            })?))
        }
        _ => Box::new(io::stdin().lock()),
    };
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let write_error = |e: io::Error| Error::invalid(format!("cannot write the output: {e}"));
    for (index, line) in input.lines().enumerate() {
        let line =
            line.map_err(|e| Error::invalid(format!("cannot read line {}: {e}", index + 1)))?;
        if line.trim().is_empty() {
            continue;
        }
        let result = lines.scan_line(&line, index + 1);
        writeln!(out, "{result}").map_err(write_error)?;
    }
    out.flush().map_err(write_error)?;
    Ok(())
}
