//! Loading an [`EventTable`] from CSV.
//!
//! A small reader written for this one shape of file rather than the `csv` crate: it parses
//! straight from one buffer into interned columns (no record allocation), splits files
//! without quotes at line boundaries to parse them on every core, and still reads RFC 4180
//! quoting (`"a,b"`, `""` for a quote, line breaks inside quotes) when a file has any.

use std::borrow::Cow;
use std::io::Read;

use self::dict::Dict;
use super::table::{EventTable, Rows};
use super::timestamp::parse_timestamp_micros;
use crate::error::{AnalyticsError, Result};

mod dict;
#[cfg(test)]
mod tests;

/// How to read events from CSV.
///
/// The first line is a header naming the columns. Three are required (by default `user_id`,
/// `event` and `ts`); `ts` is integer microseconds since the Unix epoch or RFC 3339 with an
/// offset (see [`parse_timestamp_micros`]). Every other column becomes an event column,
/// usable for a [`Breakdown::Event`](super::Breakdown::Event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsvOptions {
    /// The user id column (default `user_id`).
    pub user_column: String,
    /// The event name column (default `event`).
    pub event_column: String,
    /// The timestamp column (default `ts`).
    pub ts_column: String,
    /// The extra columns to keep; `None` keeps them all (default). Keeping only the column a
    /// query breaks down by makes loading faster.
    pub keep_columns: Option<Vec<String>>,
    /// Parser threads for files without quotes; 0 uses the machine's available parallelism.
    pub threads: usize,
}

impl Default for CsvOptions {
    fn default() -> Self {
        Self {
            user_column: "user_id".into(),
            event_column: "event".into(),
            ts_column: "ts".into(),
            keep_columns: None,
            threads: 0,
        }
    }
}

impl EventTable {
    /// Reads CSV with the default [`CsvOptions`] (header `user_id,event,ts`, extra columns
    /// kept as event columns).
    ///
    /// ```
    /// use mia_analytics::funnel::EventTable;
    ///
    /// let csv = "user_id,event,ts,variant\n\
    ///            u1,sent,2026-01-01T00:00:00Z,A\n\
    ///            u1,read,1767225660000000,A\n";
    /// let table = EventTable::from_csv(csv.as_bytes())?;
    /// assert_eq!(table.user_events("u1").unwrap(), [("sent", 1767225600000000), ("read", 1767225660000000)]);
    /// # Ok::<(), mia_analytics::AnalyticsError>(())
    /// ```
    ///
    /// # Errors
    /// [`AnalyticsError::Io`] if reading fails; [`AnalyticsError::Csv`] with the line number
    /// for a missing column, a wrong number of fields, an empty user id or event name, a
    /// timestamp that does not parse, bad quoting or invalid UTF-8;
    /// [`AnalyticsError::TooLarge`] past `u32::MAX` rows or 65,536 event names.
    pub fn from_csv(reader: impl Read) -> Result<Self> {
        Self::from_csv_with(reader, &CsvOptions::default())
    }

    /// Reads CSV with explicit options.
    ///
    /// # Errors
    /// As [`from_csv`](Self::from_csv), and [`AnalyticsError::Csv`] on line 1 when a column
    /// named in `keep_columns` is not in the header.
    pub fn from_csv_with(mut reader: impl Read, options: &CsvOptions) -> Result<Self> {
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes)?;
        Self::from_csv_bytes(&bytes, options)
    }

    /// Parses CSV already in memory.
    ///
    /// # Errors
    /// As [`from_csv_with`](Self::from_csv_with), without the I/O.
    pub fn from_csv_bytes(bytes: &[u8], options: &CsvOptions) -> Result<Self> {
        let text = std::str::from_utf8(bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            AnalyticsError::csv(line as u64, "not valid UTF-8")
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut pos = 0;
        let mut line = 1;
        let mut fields = Vec::new();
        let header_line = line;
        if !next_record(text, &mut pos, &mut line, &mut fields)
            .map_err(|(l, m)| AnalyticsError::csv(l, m))?
        {
            return Err(AnalyticsError::csv(1, "empty file: expected a header"));
        }
        let layout = Layout::new(&fields, options, header_line)?;
        let body = &text[pos..];
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let parts = if body.contains('"') {
            vec![parse_general(body, line, &layout)]
        } else {
            parse_parallel(body, &layout, threads)
        };
        merge(parts, line, &layout)
    }
}

/// Where the needed fields are in each record.
struct Layout {
    width: usize,
    user: usize,
    event: usize,
    ts: usize,
    /// (name, field index) of the kept extra columns.
    extra: Vec<(String, usize)>,
    header: String,
}

impl Layout {
    fn new(header: &[Cow<'_, str>], options: &CsvOptions, line: u64) -> Result<Self> {
        let find = |name: &str| {
            header.iter().position(|h| h == name).ok_or_else(|| {
                AnalyticsError::csv(
                    line,
                    format!(
                        "missing column {name:?} in the header (found: {})",
                        header.join(",")
                    ),
                )
            })
        };
        let (user, event, ts) = (
            find(&options.user_column)?,
            find(&options.event_column)?,
            find(&options.ts_column)?,
        );
        let extra = match &options.keep_columns {
            Some(keep) => keep
                .iter()
                .map(|name| find(name).map(|i| (name.clone(), i)))
                .collect::<Result<Vec<_>>>()?,
            None => header
                .iter()
                .enumerate()
                .filter(|(i, _)| ![user, event, ts].contains(i))
                .map(|(i, h)| (h.to_string(), i))
                .collect(),
        };
        Ok(Self {
            width: header.len(),
            user,
            event,
            ts,
            extra,
            header: header.join(","),
        })
    }
}

/// Reads one record starting at `pos`, advancing `pos` past its line end and `line` by the
/// lines it spans. `Ok(false)` at the end of the text.
fn next_record<'a>(
    text: &'a str,
    pos: &mut usize,
    line: &mut u64,
    fields: &mut Vec<Cow<'a, str>>,
) -> std::result::Result<bool, (u64, String)> {
    fields.clear();
    let b = text.as_bytes();
    if *pos >= b.len() {
        return Ok(false);
    }
    let start_line = *line;
    let mut i = *pos;
    loop {
        if b.get(i) == Some(&b'"') {
            // Quoted field: up to the closing quote; `""` is one quote.
            let mut value = String::new();
            let mut from = i + 1;
            let mut j = from;
            loop {
                match b.get(j) {
                    None => return Err((start_line, "a quoted field is not closed".into())),
                    Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                        value.push_str(&text[from..=j]);
                        j += 2;
                        from = j;
                    }
                    Some(b'"') => break,
                    Some(c) => {
                        if *c == b'\n' {
                            *line += 1;
                        }
                        j += 1;
                    }
                }
            }
            let field = if value.is_empty() {
                Cow::Borrowed(&text[from..j])
            } else {
                value.push_str(&text[from..j]);
                Cow::Owned(value)
            };
            fields.push(field);
            i = j + 1;
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'\n') | None => break,
                Some(b'\r') if matches!(b.get(i + 1), Some(b'\n') | None) => {
                    i += 1;
                    break;
                }
                Some(_) => {
                    return Err((*line, "unexpected character after a closing quote".into()));
                }
            }
        } else {
            let end = b[i..]
                .iter()
                .position(|&c| c == b',' || c == b'\n')
                .map_or(b.len(), |p| i + p);
            let value = text[i..end].strip_suffix('\r').unwrap_or(&text[i..end]);
            fields.push(Cow::Borrowed(value));
            i = end;
            if b.get(i) == Some(&b',') {
                i += 1;
            } else {
                break;
            }
        }
    }
    // Past the line end.
    if b.get(i) == Some(&b'\n') {
        i += 1;
    }
    *line += 1;
    *pos = i;
    Ok(true)
}

/// Rows of one slice of the file, with ids local to it.
struct Part<'a> {
    users: Dict<'a>,
    names: Dict<'a>,
    user: Vec<u32>,
    event: Vec<u32>,
    ts: Vec<i64>,
    extra: Vec<(Dict<'a>, Vec<u32>)>,
    /// Lines consumed (when the part ended without error).
    lines: u64,
    /// The first error: (line within the part, 0-based; message).
    error: Option<(u64, String)>,
}

impl<'a> Part<'a> {
    fn new(layout: &Layout, rows_hint: usize) -> Self {
        Self {
            // A guess of a few events per user saves most of the rehashing.
            users: Dict::with_capacity(rows_hint / 8),
            names: Dict::default(),
            user: Vec::with_capacity(rows_hint),
            event: Vec::with_capacity(rows_hint),
            ts: Vec::with_capacity(rows_hint),
            extra: layout
                .extra
                .iter()
                .map(|_| (Dict::default(), Vec::with_capacity(rows_hint)))
                .collect(),
            lines: 0,
            error: None,
        }
    }

    /// Adds one record, or says what is wrong with it.
    fn add(&mut self, fields: &[Cow<'a, str>], layout: &Layout) -> std::result::Result<(), String> {
        if fields.len() != layout.width {
            return Err(format!(
                "expected {} fields ({}), found {}",
                layout.width,
                layout.header,
                fields.len()
            ));
        }
        let (user, event, ts) = (
            &fields[layout.user],
            &fields[layout.event],
            &fields[layout.ts],
        );
        if user.is_empty() {
            return Err("empty user id".into());
        }
        if event.is_empty() {
            return Err("empty event name".into());
        }
        let ts = parse_timestamp_micros(ts.trim()).ok_or_else(|| {
            format!(
                "cannot parse timestamp {:?}: expected integer microseconds since the epoch \
                 or RFC 3339 with an offset (such as 2026-01-01T00:00:00Z)",
                ts.as_ref()
            )
        })?;
        self.user.push(self.users.intern(user));
        self.event.push(self.names.intern(event));
        self.ts.push(ts);
        for ((dict, codes), (_, index)) in self.extra.iter_mut().zip(&layout.extra) {
            codes.push(dict.intern(&fields[*index]));
        }
        Ok(())
    }
}

/// A body with quotes: one sequential pass with the full record reader.
fn parse_general<'a>(body: &'a str, first_line: u64, layout: &Layout) -> Part<'a> {
    let mut part = Part::new(layout, body.len() / 32);
    let mut pos = 0;
    let mut line = first_line;
    let mut fields = Vec::with_capacity(layout.width);
    loop {
        let record_line = line;
        match next_record(body, &mut pos, &mut line, &mut fields) {
            Ok(false) => break,
            Ok(true) => {
                if is_blank(&fields) {
                    continue;
                }
                if let Err(m) = part.add(&fields, layout) {
                    part.error = Some((record_line - first_line, m));
                    break;
                }
            }
            Err((l, m)) => {
                part.error = Some((l - first_line, m));
                break;
            }
        }
    }
    part.lines = line - first_line;
    part
}

fn is_blank(fields: &[Cow<'_, str>]) -> bool {
    fields.len() == 1 && fields[0].is_empty()
}

/// A body without quotes: cut at line ends into one slice per thread.
fn parse_parallel<'a>(body: &'a str, layout: &Layout, threads: usize) -> Vec<Part<'a>> {
    let threads = if body.len() < 1 << 20 {
        1
    } else {
        threads.max(1)
    };
    let mut slices = Vec::with_capacity(threads);
    let mut start = 0;
    for t in 1..threads {
        let target = (body.len() * t / threads).max(start);
        let end = body.as_bytes()[target..]
            .iter()
            .position(|&c| c == b'\n')
            .map_or(body.len(), |p| target + p + 1);
        slices.push(&body[start..end]);
        start = end;
    }
    slices.push(&body[start..]);
    if slices.len() == 1 {
        return vec![parse_simple(slices[0], layout)];
    }
    std::thread::scope(|scope| {
        let workers: Vec<_> = slices
            .into_iter()
            .map(|s| scope.spawn(move || parse_simple(s, layout)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join().unwrap_or_else(|_| {
                    let mut p = Part::new(layout, 0);
                    p.error = Some((0, "a parser thread failed".into()));
                    p
                })
            })
            .collect()
    })
}

fn parse_simple<'a>(slice: &'a str, layout: &Layout) -> Part<'a> {
    let mut part = Part::new(layout, slice.len() / 32);
    let mut fields: Vec<Cow<'a, str>> = Vec::with_capacity(layout.width);
    let mut lines = 0u64;
    for raw in slice.split_terminator('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        lines += 1;
        if line.is_empty() {
            continue;
        }
        fields.clear();
        fields.extend(line.split(',').map(Cow::Borrowed));
        if let Err(m) = part.add(&fields, layout) {
            part.error = Some((lines - 1, m));
            return part;
        }
    }
    part.lines = lines;
    part
}

/// Joins the parts' dictionaries into one and builds the table.
fn merge(parts: Vec<Part<'_>>, first_line: u64, layout: &Layout) -> Result<EventTable> {
    let mut line = first_line;
    for part in &parts {
        if let Some((offset, message)) = &part.error {
            return Err(AnalyticsError::csv(line + offset, message.clone()));
        }
        line += part.lines;
    }
    let rows: usize = parts.iter().map(|p| p.ts.len()).sum();
    if rows > u32::MAX as usize {
        return Err(AnalyticsError::TooLarge(format!(
            "{rows} rows (at most u32::MAX)"
        )));
    }
    let mut users = Dict::default();
    let mut names = Dict::default();
    let mut extra: Vec<Dict<'_>> = layout.extra.iter().map(|_| Dict::default()).collect();
    let mut user = Vec::with_capacity(rows);
    let mut event = Vec::with_capacity(rows);
    let mut ts = Vec::with_capacity(rows);
    let mut codes: Vec<Vec<u32>> = layout
        .extra
        .iter()
        .map(|_| Vec::with_capacity(rows))
        .collect();
    for part in parts {
        let remap = users.absorb(part.users);
        user.extend(part.user.iter().map(|&u| remap[u as usize]));
        let remap = names.absorb(part.names);
        event.extend(part.event.iter().map(|&e| remap[e as usize]));
        ts.extend_from_slice(&part.ts);
        for ((dict, out), (local_dict, local)) in extra.iter_mut().zip(&mut codes).zip(part.extra) {
            let remap = dict.absorb(local_dict);
            out.extend(local.iter().map(|&c| remap[c as usize]));
        }
    }
    if names.list.len() > usize::from(u16::MAX) + 1 {
        return Err(AnalyticsError::TooLarge(format!(
            "{} distinct event names (at most 65,536)",
            names.list.len()
        )));
    }
    let event = event.into_iter().map(|e| e as u16).collect();
    EventTable::from_rows(Rows {
        users: users.into_strings(),
        names: names.into_strings(),
        user,
        event,
        ts,
        columns: layout
            .extra
            .iter()
            .zip(extra)
            .zip(codes)
            .map(|(((name, _), dict), codes)| (name.clone(), dict.into_strings(), codes))
            .collect(),
        user_columns: Vec::new(),
    })
}
