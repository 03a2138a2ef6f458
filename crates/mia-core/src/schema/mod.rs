//! A small JSON Schema validator for the subset tool input schemas use.
//!
//! A tool's input schema is compiled once with [`Schema::compile`]; every input the model sends
//! is then checked with [`Schema::validate`], which returns *all* the problems (up to
//! [`MAX_VIOLATIONS`]), each with the JSON pointer of the offending value and a plain message
//! the model can act on.
//!
//! Supported keywords:
//!
//! | keyword | meaning |
//! | --- | --- |
//! | `type` | one type or an array of them: `null`, `boolean`, `integer`, `number`, `string`, `array`, `object` (`integer` is a number without a fractional part, `1.0` included) |
//! | `properties`, `required`, `additionalProperties` | object members; `additionalProperties` is a boolean or a schema |
//! | `items`, `minItems`, `maxItems`, `uniqueItems` | arrays (`items` is one schema for every item) |
//! | `enum`, `const` | fixed values, compared as JSON (`1` equals `1.0`, key order does not matter) |
//! | `minLength`, `maxLength` | string length in characters (Unicode scalar values), not bytes |
//! | `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` | number bounds (the numeric form of the exclusive bounds) |
//! | `anyOf`, `oneOf`, `allOf` | combinations of schemas |
//! | `description`, `title`, `default`, `examples`, `$schema`, `$comment` | annotations, ignored |
//!
//! `true` and `false` are schemas too (anything / nothing). Any other keyword is a compile
//! error, never silently ignored: a schema that says `"pattern"` or `"format"` promises a check
//! this validator would not make (mia-core carries no regex engine), so the host learns at
//! registration time and checks that rule in its handler instead.
//!
//! ```
//! use mia_core::schema::Schema;
//! use serde_json::json;
//!
//! let schema = Schema::compile(&json!({
//!     "type": "object",
//!     "properties": {
//!         "variants": {
//!             "type": "array",
//!             "minItems": 1,
//!             "items": {
//!                 "type": "object",
//!                 "properties": {"text": {"type": "string", "minLength": 1}},
//!                 "required": ["text"]
//!             }
//!         }
//!     },
//!     "required": ["variants"]
//! }))?;
//!
//! assert!(schema.validate(&json!({"variants": [{"text": "Hi"}]})).is_ok());
//!
//! let violations = schema
//!     .validate(&json!({"variants": [{"text": "Hi"}, {"text": 7}]}))
//!     .unwrap_err();
//! assert_eq!(violations[0].path, "/variants/1/text");
//! assert_eq!(violations[0].to_string(), "/variants/1/text: expected string, got integer 7");
//!
//! // Unknown keywords are refused when the schema is compiled.
//! let err = Schema::compile(&json!({"type": "string", "patern": "^a"})).unwrap_err();
//! assert!(err.to_string().contains("unknown keyword `patern`"));
//! # Ok::<(), mia_core::schema::SchemaError>(())
//! ```

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Number, Value};

/// The most violations [`Schema::validate`] reports; validation stops collecting after it.
pub const MAX_VIOLATIONS: usize = 32;

/// The deepest nesting of schemas [`Schema::compile`] accepts, so that neither compiling nor
/// validating can exhaust the stack.
pub const MAX_SCHEMA_DEPTH: usize = 64;

/// How much of a value a message quotes, in characters.
const QUOTE_CHARS: usize = 60;

/// Keywords that mean nothing to validation.
const ANNOTATIONS: &[&str] = &[
    "description",
    "title",
    "default",
    "examples",
    "$schema",
    "$comment",
];

/// JSON Schema keywords this validator knows but does not implement: named as unsupported
/// rather than unknown, so the message says what to do.
const UNSUPPORTED: &[&str] = &[
    "pattern",
    "format",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "dependentSchemas",
    "dependencies",
    "prefixItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedItems",
    "unevaluatedProperties",
    "additionalItems",
    "multipleOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$defs",
    "definitions",
    "$id",
    "$anchor",
    "$dynamicRef",
    "contentEncoding",
    "contentMediaType",
    "nullable",
    "readOnly",
    "writeOnly",
    "deprecated",
];

/// A schema that cannot be compiled: where in the schema, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid schema at {}: {message}", display_path(path))]
pub struct SchemaError {
    /// The JSON pointer of the offending part of the schema (`""` is the whole schema).
    pub path: String,
    /// What is wrong with it.
    pub message: String,
}

/// One way a value breaks a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The JSON pointer of the offending value in the validated document (`""` is the whole
    /// document, `/variants/2/text` the `text` of the third variant).
    pub path: String,
    /// What is wrong, in plain words.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", display_path(&self.path), self.message)
    }
}

/// Joins violations into one line (`/a: ...; /b/0: ...`), for an error message.
pub fn describe(violations: &[Violation]) -> String {
    let mut out = String::new();
    for (i, v) in violations.iter().enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.push_str(&v.to_string());
    }
    out
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "(root)" } else { path }
}

/// A JSON type as `type` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JsonType {
    Null,
    Boolean,
    Integer,
    Number,
    String,
    Array,
    Object,
}

impl JsonType {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "null" => JsonType::Null,
            "boolean" => JsonType::Boolean,
            "integer" => JsonType::Integer,
            "number" => JsonType::Number,
            "string" => JsonType::String,
            "array" => JsonType::Array,
            "object" => JsonType::Object,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            JsonType::Null => "null",
            JsonType::Boolean => "boolean",
            JsonType::Integer => "integer",
            JsonType::Number => "number",
            JsonType::String => "string",
            JsonType::Array => "array",
            JsonType::Object => "object",
        }
    }

    fn matches(self, value: &Value) -> bool {
        match self {
            JsonType::Null => value.is_null(),
            JsonType::Boolean => value.is_boolean(),
            JsonType::Integer => value.as_number().is_some_and(is_integer),
            JsonType::Number => value.is_number(),
            JsonType::String => value.is_string(),
            JsonType::Array => value.is_array(),
            JsonType::Object => value.is_object(),
        }
    }
}

fn is_integer(n: &Number) -> bool {
    n.is_i64()
        || n.is_u64()
        || n.as_f64()
            .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
}

/// The kind of a value, for messages (`integer` for whole numbers).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if is_integer(n) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// What to do with members `properties` does not name.
#[derive(Clone, Debug, PartialEq)]
enum Additional {
    Allow,
    Deny,
    Schema(Box<Node>),
}

/// A numeric bound, kept exact for integers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bound {
    Int(i128),
    Float(f64),
}

impl Bound {
    fn of(n: &Number) -> Self {
        if let Some(i) = n.as_i64() {
            Bound::Int(i128::from(i))
        } else if let Some(u) = n.as_u64() {
            Bound::Int(i128::from(u))
        } else {
            Bound::Float(n.as_f64().unwrap_or(f64::NAN))
        }
    }

    /// Compares two numbers; `None` only for a NaN, which serde_json never produces.
    fn compare(self, other: Bound) -> Option<Ordering> {
        match (self, other) {
            (Bound::Int(a), Bound::Int(b)) => Some(a.cmp(&b)),
            // Precision may be lost past 2^53, which bounds in tool schemas never reach.
            #[allow(clippy::cast_precision_loss)]
            (Bound::Int(a), Bound::Float(b)) => (a as f64).partial_cmp(&b),
            #[allow(clippy::cast_precision_loss)]
            (Bound::Float(a), Bound::Int(b)) => a.partial_cmp(&(b as f64)),
            (Bound::Float(a), Bound::Float(b)) => a.partial_cmp(&b),
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Int(i) => write!(f, "{i}"),
            Bound::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A compiled schema node. `Never` is the `false` schema.
#[derive(Clone, Debug, PartialEq, Default)]
struct Node {
    never: bool,
    types: Option<Vec<JsonType>>,
    properties: Vec<(String, Node)>,
    required: Vec<String>,
    additional: Option<Additional>,
    items: Option<Box<Node>>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    unique_items: bool,
    enumeration: Option<Vec<Value>>,
    constant: Option<Value>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    exclusive_minimum: Option<Bound>,
    exclusive_maximum: Option<Bound>,
    any_of: Vec<Node>,
    one_of: Vec<Node>,
    all_of: Vec<Node>,
}

/// A compiled JSON Schema (the subset in the [module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    root: Node,
}

impl Schema {
    /// Compiles `schema`.
    ///
    /// # Errors
    /// [`SchemaError`] for an unknown or unsupported keyword, a keyword with a value of the
    /// wrong shape (`"minItems": -1`, `"required": "a"`, `"type": "text"`), or nesting deeper
    /// than [`MAX_SCHEMA_DEPTH`].
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let mut path = String::new();
        Ok(Self {
            root: compile_node(schema, &mut path, 0)?,
        })
    }

    /// Checks `value`, returning every violation found (at most [`MAX_VIOLATIONS`], in a
    /// stable order: array items by index, object members as `serde_json` iterates them).
    ///
    /// # Errors
    /// The violations, when there is at least one.
    pub fn validate(&self, value: &Value) -> Result<(), Vec<Violation>> {
        let mut out = Collector {
            violations: Vec::new(),
            limit: MAX_VIOLATIONS,
        };
        let mut path = String::new();
        check(&self.root, value, &mut path, &mut out);
        if out.violations.is_empty() {
            Ok(())
        } else {
            Err(out.violations)
        }
    }

    /// Whether `value` satisfies the schema.
    pub fn is_valid(&self, value: &Value) -> bool {
        let mut out = Collector {
            violations: Vec::new(),
            limit: 1,
        };
        check(&self.root, value, &mut String::new(), &mut out);
        out.violations.is_empty()
    }
}

// --- compiling -------------------------------------------------------------------------------

/// Appends one JSON pointer token (escaping `~` and `/`), returning the old length to restore.
fn push_token(path: &mut String, token: &str) -> usize {
    let len = path.len();
    path.push('/');
    for c in token.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    len
}

fn schema_error(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn compile_node(schema: &Value, path: &mut String, depth: usize) -> Result<Node, SchemaError> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(schema_error(
            path,
            format!("schemas nest deeper than {MAX_SCHEMA_DEPTH} levels"),
        ));
    }
    let map = match schema {
        Value::Bool(true) => return Ok(Node::default()),
        Value::Bool(false) => {
            return Ok(Node {
                never: true,
                ..Node::default()
            });
        }
        Value::Object(map) => map,
        other => {
            return Err(schema_error(
                path,
                format!(
                    "a schema must be an object or a boolean, got {}",
                    kind(other)
                ),
            ));
        }
    };
    let mut node = Node::default();
    for (keyword, value) in map {
        let len = push_token(path, keyword);
        compile_keyword(&mut node, keyword, value, path, depth)?;
        path.truncate(len);
    }
    if let (Some(min), Some(max)) = (node.min_items, node.max_items)
        && min > max
    {
        return Err(schema_error(
            path,
            format!("minItems {min} is greater than maxItems {max}"),
        ));
    }
    if let (Some(min), Some(max)) = (node.min_length, node.max_length)
        && min > max
    {
        return Err(schema_error(
            path,
            format!("minLength {min} is greater than maxLength {max}"),
        ));
    }
    Ok(node)
}

fn compile_keyword(
    node: &mut Node,
    keyword: &str,
    value: &Value,
    path: &mut String,
    depth: usize,
) -> Result<(), SchemaError> {
    match keyword {
        k if ANNOTATIONS.contains(&k) => {}
        "type" => node.types = Some(compile_types(value, path)?),
        "properties" => {
            let Value::Object(props) = value else {
                return Err(schema_error(
                    path,
                    "`properties` must be an object of schemas",
                ));
            };
            for (name, schema) in props {
                let len = push_token(path, name);
                node.properties
                    .push((name.clone(), compile_node(schema, path, depth + 1)?));
                path.truncate(len);
            }
        }
        "required" => {
            let names = value
                .as_array()
                .and_then(|a| a.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
                .ok_or_else(|| {
                    schema_error(path, "`required` must be an array of property names")
                })?;
            node.required = names.into_iter().map(str::to_owned).collect();
        }
        "additionalProperties" => {
            node.additional = Some(match value {
                Value::Bool(true) => Additional::Allow,
                Value::Bool(false) => Additional::Deny,
                schema => Additional::Schema(Box::new(compile_node(schema, path, depth + 1)?)),
            });
        }
        "items" => {
            if value.is_array() {
                return Err(schema_error(
                    path,
                    "`items` as an array (tuple validation) is not supported; give one schema \
                     for every item",
                ));
            }
            node.items = Some(Box::new(compile_node(value, path, depth + 1)?));
        }
        "minItems" => node.min_items = Some(count(value, keyword, path)?),
        "maxItems" => node.max_items = Some(count(value, keyword, path)?),
        "minLength" => node.min_length = Some(count(value, keyword, path)?),
        "maxLength" => node.max_length = Some(count(value, keyword, path)?),
        "uniqueItems" => {
            node.unique_items = value
                .as_bool()
                .ok_or_else(|| schema_error(path, "`uniqueItems` must be a boolean"))?;
        }
        "enum" => {
            let values = value
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| schema_error(path, "`enum` must be a non-empty array"))?;
            node.enumeration = Some(values.clone());
        }
        "const" => node.constant = Some(value.clone()),
        "minimum" => node.minimum = Some(bound(value, keyword, path)?),
        "maximum" => node.maximum = Some(bound(value, keyword, path)?),
        "exclusiveMinimum" => node.exclusive_minimum = Some(bound(value, keyword, path)?),
        "exclusiveMaximum" => node.exclusive_maximum = Some(bound(value, keyword, path)?),
        "anyOf" | "oneOf" | "allOf" => {
            let schemas = value.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                schema_error(
                    path,
                    format!("`{keyword}` must be a non-empty array of schemas"),
                )
            })?;
            let mut nodes = Vec::with_capacity(schemas.len());
            for (i, schema) in schemas.iter().enumerate() {
                let len = push_token(path, &i.to_string());
                nodes.push(compile_node(schema, path, depth + 1)?);
                path.truncate(len);
            }
            match keyword {
                "anyOf" => node.any_of = nodes,
                "oneOf" => node.one_of = nodes,
                _ => node.all_of = nodes,
            }
        }
        k if UNSUPPORTED.contains(&k) => {
            return Err(schema_error(
                path,
                format!(
                    "the keyword `{k}` is not supported by this validator; drop it from the \
                     schema and check that rule in the tool handler"
                ),
            ));
        }
        k => return Err(schema_error(path, format!("unknown keyword `{k}`"))),
    }
    Ok(())
}

fn compile_types(value: &Value, path: &str) -> Result<Vec<JsonType>, SchemaError> {
    let parse = |v: &Value| {
        v.as_str().and_then(JsonType::parse).ok_or_else(|| {
            schema_error(
                path,
                format!(
                    "`type` must name null, boolean, integer, number, string, array or object, \
                     got {}",
                    quote(v)
                ),
            )
        })
    };
    match value {
        Value::Array(names) if !names.is_empty() => names.iter().map(parse).collect(),
        Value::Array(_) => Err(schema_error(path, "`type` must not be an empty array")),
        name => Ok(vec![parse(name)?]),
    }
}

fn count(value: &Value, keyword: &str, path: &str) -> Result<u64, SchemaError> {
    let n = value.as_number();
    n.and_then(Number::as_u64)
        .or_else(|| {
            // 2.0 is a valid count in JSON Schema; so is any non-negative whole float.
            n.and_then(Number::as_f64)
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f <= 9.0e15)
                .map(|f| f as u64)
        })
        .ok_or_else(|| {
            schema_error(
                path,
                format!(
                    "`{keyword}` must be a non-negative integer, got {}",
                    quote(value)
                ),
            )
        })
}

fn bound(value: &Value, keyword: &str, path: &str) -> Result<Bound, SchemaError> {
    match value {
        Value::Number(n) => Ok(Bound::of(n)),
        Value::Bool(_) if keyword.starts_with("exclusive") => Err(schema_error(
            path,
            format!(
                "`{keyword}` must be a number (the draft-4 boolean form is not supported; write \
                 the bound itself)"
            ),
        )),
        other => Err(schema_error(
            path,
            format!("`{keyword}` must be a number, got {}", quote(other)),
        )),
    }
}

// --- validating ------------------------------------------------------------------------------

struct Collector {
    violations: Vec<Violation>,
    limit: usize,
}

impl Collector {
    fn full(&self) -> bool {
        self.violations.len() >= self.limit
    }

    fn push(&mut self, path: &str, message: String) {
        if !self.full() {
            self.violations.push(Violation {
                path: path.to_owned(),
                message,
            });
        }
    }
}

/// Quotes a value for a message, shortened to [`QUOTE_CHARS`] characters.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= QUOTE_CHARS {
        text
    } else {
        let mut short: String = text.chars().take(QUOTE_CHARS).collect();
        short.push('…');
        short
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn check(node: &Node, value: &Value, path: &mut String, out: &mut Collector) {
    if out.full() {
        return;
    }
    if node.never {
        out.push(path, "no value is allowed here".to_owned());
        return;
    }
    if let Some(types) = &node.types
        && !types.iter().any(|t| t.matches(value))
    {
        let expected: Vec<&str> = types.iter().map(|t| t.name()).collect();
        out.push(
            path,
            format!(
                "expected {}, got {} {}",
                expected.join(" or "),
                kind(value),
                quote(value)
            ),
        );
        // The other keywords would only repeat the mismatch.
        return;
    }
    if let Some(constant) = &node.constant
        && !json_equal(constant, value)
    {
        out.push(
            path,
            format!("expected {}, got {}", quote(constant), quote(value)),
        );
    }
    if let Some(values) = &node.enumeration
        && !values.iter().any(|v| json_equal(v, value))
    {
        let allowed: Vec<String> = values.iter().take(10).map(quote).collect();
        let more = if values.len() > 10 { ", …" } else { "" };
        out.push(
            path,
            format!(
                "expected one of {}{more}, got {}",
                allowed.join(", "),
                quote(value)
            ),
        );
    }
    match value {
        Value::String(s) => check_string(node, s, path, out),
        Value::Number(n) => check_number(node, n, path, out),
        Value::Array(items) => check_array(node, items, path, out),
        Value::Object(map) => check_object(node, map, path, out),
        Value::Null | Value::Bool(_) => {}
    }
    for sub in &node.all_of {
        check(sub, value, path, out);
    }
    if !node.any_of.is_empty() {
        let failures: Vec<Vec<Violation>> = node
            .any_of
            .iter()
            .map(|sub| branch(sub, value, path))
            .collect();
        if failures.iter().all(|f| !f.is_empty()) {
            out.push(
                path,
                format!(
                    "matches none of the {} allowed alternatives (anyOf): {}",
                    node.any_of.len(),
                    alternatives(&failures)
                ),
            );
        }
    }
    if !node.one_of.is_empty() {
        let failures: Vec<Vec<Violation>> = node
            .one_of
            .iter()
            .map(|sub| branch(sub, value, path))
            .collect();
        let passed: Vec<usize> = (0..failures.len())
            .filter(|&i| failures[i].is_empty())
            .collect();
        match passed.len() {
            1 => {}
            0 => out.push(
                path,
                format!(
                    "matches none of the {} alternatives, exactly one must match (oneOf): {}",
                    node.one_of.len(),
                    alternatives(&failures)
                ),
            ),
            _ => out.push(
                path,
                format!(
                    "matches alternatives {} at once, exactly one must match (oneOf)",
                    passed
                        .iter()
                        .map(|i| (i + 1).to_string())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            ),
        }
    }
}

/// The violations of one alternative, checked on its own (only the first few are kept).
fn branch(node: &Node, value: &Value, path: &str) -> Vec<Violation> {
    let mut sub = Collector {
        violations: Vec::new(),
        limit: 3,
    };
    check(node, value, &mut path.to_owned(), &mut sub);
    sub.violations
}

fn alternatives(failures: &[Vec<Violation>]) -> String {
    failures
        .iter()
        .enumerate()
        .map(|(i, f)| format!("alternative {}: {}", i + 1, describe(f)))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn check_string(node: &Node, s: &str, path: &str, out: &mut Collector) {
    if node.min_length.is_none() && node.max_length.is_none() {
        return;
    }
    let chars = s.chars().count() as u64;
    if let Some(min) = node.min_length
        && chars < min
    {
        out.push(
            path,
            format!(
                "expected at least {}, got {chars}",
                plural(min, "character", "characters")
            ),
        );
    }
    if let Some(max) = node.max_length
        && chars > max
    {
        out.push(
            path,
            format!(
                "expected at most {}, got {chars}",
                plural(max, "character", "characters")
            ),
        );
    }
}

fn check_number(node: &Node, n: &Number, path: &str, out: &mut Collector) {
    let value = Bound::of(n);
    let rules = [
        (node.minimum, "at least", [Ordering::Less].as_slice()),
        (node.maximum, "at most", [Ordering::Greater].as_slice()),
        (
            node.exclusive_minimum,
            "more than",
            [Ordering::Less, Ordering::Equal].as_slice(),
        ),
        (
            node.exclusive_maximum,
            "less than",
            [Ordering::Greater, Ordering::Equal].as_slice(),
        ),
    ];
    for (limit, words, failing) in rules {
        if let Some(limit) = limit
            && value
                .compare(limit)
                .is_none_or(|ordering| failing.contains(&ordering))
        {
            out.push(path, format!("expected {words} {limit}, got {value}"));
        }
    }
}

fn check_array(node: &Node, items: &[Value], path: &mut String, out: &mut Collector) {
    let len = items.len() as u64;
    if let Some(min) = node.min_items
        && len < min
    {
        out.push(
            path,
            format!(
                "expected at least {}, got {len}",
                plural(min, "item", "items")
            ),
        );
    }
    if let Some(max) = node.max_items
        && len > max
    {
        out.push(
            path,
            format!(
                "expected at most {}, got {len}",
                plural(max, "item", "items")
            ),
        );
    }
    if node.unique_items {
        // Quadratic, but tool inputs are small; stops at the first duplicate.
        'outer: for (i, a) in items.iter().enumerate() {
            for (j, b) in items.iter().enumerate().skip(i + 1) {
                if json_equal(a, b) {
                    out.push(
                        path,
                        format!("items {i} and {j} are equal; items must be unique"),
                    );
                    break 'outer;
                }
            }
        }
    }
    if let Some(schema) = &node.items {
        for (i, item) in items.iter().enumerate() {
            if out.full() {
                return;
            }
            let len = push_token(path, &i.to_string());
            check(schema, item, path, out);
            path.truncate(len);
        }
    }
}

fn check_object(node: &Node, map: &Map<String, Value>, path: &mut String, out: &mut Collector) {
    for name in &node.required {
        if !map.contains_key(name) {
            out.push(
                path,
                format!(
                    "missing required property {}",
                    quote(&Value::from(name.as_str()))
                ),
            );
        }
    }
    for (name, value) in map {
        if out.full() {
            return;
        }
        let declared = node.properties.iter().find(|(n, _)| n == name);
        let len = push_token(path, name);
        match (declared, &node.additional) {
            (Some((_, schema)), _) => check(schema, value, path, out),
            (None, Some(Additional::Deny)) => {
                let allowed: Vec<&str> = node.properties.iter().map(|(n, _)| n.as_str()).collect();
                let message = if allowed.is_empty() {
                    "unexpected property; this object takes no properties".to_owned()
                } else {
                    format!(
                        "unexpected property; allowed properties are {}",
                        allowed.join(", ")
                    )
                };
                out.push(path, message);
            }
            (None, Some(Additional::Schema(schema))) => check(schema, value, path, out),
            (None, Some(Additional::Allow) | None) => {}
        }
        path.truncate(len);
    }
}

/// JSON equality: numbers by value (`1` equals `1.0`), objects whatever their key order.
/// Iterative, so a deeply nested value cannot exhaust the stack.
fn json_equal(a: &Value, b: &Value) -> bool {
    let mut pending = vec![(a, b)];
    while let Some((a, b)) = pending.pop() {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => {
                if Bound::of(x).compare(Bound::of(y)) != Some(Ordering::Equal) {
                    return false;
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                pending.extend(x.iter().zip(y));
            }
            (Value::Object(x), Value::Object(y)) => {
                if x.len() != y.len() {
                    return false;
                }
                for (key, xv) in x {
                    match y.get(key) {
                        Some(yv) => pending.push((xv, yv)),
                        None => return false,
                    }
                }
            }
            (Value::Null, Value::Null) => {}
            (Value::Bool(x), Value::Bool(y)) if x == y => {}
            (Value::String(x), Value::String(y)) if x == y => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests;
