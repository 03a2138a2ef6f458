//! Tests of the schema validator: every keyword, paths, compile errors, no panics.
use proptest::prelude::*;
use serde_json::json;

use super::*;

fn compile(schema: Value) -> Schema {
    Schema::compile(&schema).unwrap_or_else(|e| panic!("{schema} does not compile: {e}"))
}

/// The violations of `value`, as `path: message` lines.
fn errors(schema: &Value, value: Value) -> Vec<String> {
    match compile(schema.clone()).validate(&value) {
        Ok(()) => Vec::new(),
        Err(v) => v.iter().map(ToString::to_string).collect(),
    }
}

/// Every keyword: a schema, a value that passes, one that fails, and the message expected.
#[rustfmt::skip]
fn keyword_cases() -> Vec<(Value, Value, Value, &'static str)> {
    vec![
        (json!({"type": "string"}), json!("a"), json!(1), "(root): expected string, got integer 1"),
        (json!({"type": "integer"}), json!(3), json!(3.5), "(root): expected integer, got number 3.5"),
        (json!({"type": "integer"}), json!(3.0), json!("3"), "(root): expected integer, got string \"3\""),
        (json!({"type": "number"}), json!(3.5), json!(null), "(root): expected number, got null null"),
        (json!({"type": "boolean"}), json!(true), json!(0), "(root): expected boolean, got integer 0"),
        (json!({"type": "null"}), json!(null), json!(false), "(root): expected null, got boolean false"),
        (json!({"type": "array"}), json!([]), json!({}), "(root): expected array, got object {}"),
        (json!({"type": "object"}), json!({}), json!([]), "(root): expected object, got array []"),
        (json!({"type": ["string", "null"]}), json!(null), json!(2), "(root): expected string or null, got integer 2"),
        (json!({"required": ["a"]}), json!({"a": 1}), json!({"b": 1}), "(root): missing required property \"a\""),
        (json!({"properties": {"a": {"type": "string"}}}), json!({"a": "x", "b": 1}), json!({"a": 1}), "/a: expected string, got integer 1"),
        (json!({"properties": {"a": {}}, "additionalProperties": false}), json!({"a": 1}), json!({"a": 1, "b": 2}), "/b: unexpected property; allowed properties are a"),
        (json!({"additionalProperties": false}), json!({}), json!({"b": 2}), "/b: unexpected property; this object takes no properties"),
        (json!({"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}), json!({"a": "x", "b": 2}), json!({"b": "2"}), "/b: expected integer, got string \"2\""),
        (json!({"items": {"type": "integer"}}), json!([1, 2]), json!([1, "2"]), "/1: expected integer, got string \"2\""),
        (json!({"minItems": 2}), json!([1, 2]), json!([1]), "(root): expected at least 2 items, got 1"),
        (json!({"maxItems": 1}), json!([1]), json!([1, 2]), "(root): expected at most 1 item, got 2"),
        (json!({"uniqueItems": true}), json!([1, "1", [1]]), json!([{"a": 1, "b": 2}, 3, {"b": 2, "a": 1.0}]), "(root): items 0 and 2 are equal; items must be unique"),
        (json!({"uniqueItems": false}), json!([1, 1]), json!(null), ""),
        (json!({"enum": ["a", 1]}), json!(1.0), json!("b"), "(root): expected one of \"a\", 1, got \"b\""),
        (json!({"const": {"k": [1]}}), json!({"k": [1.0]}), json!({"k": [2]}), "(root): expected {\"k\":[1]}, got {\"k\":[2]}"),
        (json!({"minLength": 2}), json!("éé"), json!("é"), "(root): expected at least 2 characters, got 1"),
        (json!({"maxLength": 2}), json!("日本"), json!("日本語"), "(root): expected at most 2 characters, got 3"),
        (json!({"minimum": 1}), json!(1), json!(0.5), "(root): expected at least 1, got 0.5"),
        (json!({"maximum": 1.5}), json!(1.5), json!(2), "(root): expected at most 1.5, got 2"),
        (json!({"exclusiveMinimum": 0}), json!(0.1), json!(0), "(root): expected more than 0, got 0"),
        (json!({"exclusiveMaximum": 10}), json!(9), json!(10), "(root): expected less than 10, got 10"),
        (json!({"minimum": -9223372036854775808_i64}), json!(-9223372036854775808_i64), json!(-1e19), "(root): expected at least -9223372036854775808, got -10000000000000000000"),
        (json!({"maximum": 18446744073709551615_u64}), json!(18446744073709551615_u64), json!(1e20), "(root): expected at most 18446744073709551615, got 100000000000000000000"),
        (json!({"allOf": [{"type": "integer"}, {"minimum": 3}]}), json!(4), json!(2), "(root): expected at least 3, got 2"),
        (json!({"anyOf": [{"type": "integer"}, {"minLength": 2}]}), json!("ab"), json!("a"), "(root): matches none of the 2 allowed alternatives (anyOf): alternative 1: (root): expected integer, got string \"a\" | alternative 2: (root): expected at least 2 characters, got 1"),
        (json!({"oneOf": [{"type": "integer"}, {"minimum": 5}]}), json!(2), json!(7), "(root): matches alternatives 1 and 2 at once, exactly one must match (oneOf)"),
        (json!({"oneOf": [{"type": "integer"}, {"type": "null"}]}), json!(null), json!("x"), "(root): matches none of the 2 alternatives, exactly one must match (oneOf): alternative 1: (root): expected integer, got string \"x\" | alternative 2: (root): expected null, got string \"x\""),
        (json!(true), json!({"anything": 1}), json!(null), ""),
        (json!({"properties": {"a": false}}), json!({}), json!({"a": null}), "/a: no value is allowed here"),
        (json!({"description": "d", "title": "t", "default": 1, "examples": [1], "$schema": "https://json-schema.org/draft/2020-12/schema", "$comment": "c", "type": "integer"}), json!(1), json!("1"), "(root): expected integer, got string \"1\""),
    ]
}

/// Every keyword, one value that passes and one that fails with the message expected.
#[test]
fn every_keyword_passes_and_fails() {
    let cases = keyword_cases();
    for (schema, good, bad, message) in cases {
        assert_eq!(
            errors(&schema, good.clone()),
            Vec::<String>::new(),
            "{schema} on {good}"
        );
        let expected: Vec<String> = if message.is_empty() {
            Vec::new()
        } else {
            vec![message.to_owned()]
        };
        assert_eq!(errors(&schema, bad.clone()), expected, "{schema} on {bad}");
    }
    assert!(!compile(json!(false)).is_valid(&json!(null)));
}

#[test]
fn nested_paths_point_at_the_value_and_all_violations_are_collected() {
    let schema = json!({
        "type": "object",
        "properties": {
            "variants": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "maxLength": 5},
                        "tags": {"type": "array", "items": {"enum": ["new", "sale"]}}
                    },
                    "required": ["text"],
                    "additionalProperties": false
                }
            },
            "a/b~c": {"type": "integer"}
        },
        "required": ["variants"]
    });
    assert_eq!(
        errors(
            &schema,
            json!({
                "variants": [
                    {"text": "fine", "tags": ["new"]},
                    {"text": "far too long", "tags": ["new", "old"]},
                    {"tags": [], "mood": "x"}
                ],
                "a/b~c": "1"
            })
        ),
        vec![
            "/a~1b~0c: expected integer, got string \"1\"",
            "/variants/1/tags/1: expected one of \"new\", \"sale\", got \"old\"",
            "/variants/1/text: expected at most 5 characters, got 12",
            "/variants/2: missing required property \"text\"",
            "/variants/2/mood: unexpected property; allowed properties are tags, text",
        ]
    );
}

#[test]
fn violations_are_capped() {
    let schema = compile(json!({"items": {"type": "string"}}));
    let many: Vec<Value> = (0..1000).map(Value::from).collect();
    let violations = schema.validate(&Value::from(many)).unwrap_err();
    assert_eq!(violations.len(), MAX_VIOLATIONS);
    assert_eq!(violations[31].path, "/31");
    assert!(describe(&violations[..2]).starts_with("/0: expected string, got integer 0; /1: "));
}

#[test]
fn long_values_are_quoted_short() {
    let long = "x".repeat(500);
    let e = errors(&json!({"type": "integer"}), json!(long));
    assert!(e[0].ends_with("…"), "{}", e[0]);
    assert!(e[0].chars().count() < 120, "{}", e[0]);
}

/// Schemas that must not compile, and a part of the error expected.
#[rustfmt::skip]
fn bad_schema_cases() -> Vec<(Value, &'static str)> {
    vec![
        (json!({"type": "object", "patern": "x"}), "invalid schema at /patern: unknown keyword `patern`"),
        (json!({"properties": {"a": {"format": "email"}}}), "invalid schema at /properties/a/format: the keyword `format` is not supported"),
        (json!({"pattern": "^a"}), "the keyword `pattern` is not supported"),
        (json!({"$ref": "#/$defs/a"}), "the keyword `$ref` is not supported"),
        (json!({"type": "text"}), "invalid schema at /type: `type` must name null, boolean, integer, number, string, array or object, got \"text\""),
        (json!({"type": []}), "`type` must not be an empty array"),
        (json!({"type": ["string", 1]}), "got 1"),
        (json!({"properties": []}), "`properties` must be an object of schemas"),
        (json!({"properties": {"a": 1}}), "invalid schema at /properties/a: a schema must be an object or a boolean, got integer"),
        (json!({"required": "a"}), "`required` must be an array of property names"),
        (json!({"required": [1]}), "`required` must be an array of property names"),
        (json!({"additionalProperties": "no"}), "invalid schema at /additionalProperties: a schema must be an object or a boolean"),
        (json!({"items": [{}]}), "tuple validation"),
        (json!({"items": {"minItems": -1}}), "invalid schema at /items/minItems: `minItems` must be a non-negative integer, got -1"),
        (json!({"maxItems": 1.5}), "`maxItems` must be a non-negative integer, got 1.5"),
        (json!({"minLength": "2"}), "`minLength` must be a non-negative integer"),
        (json!({"maxLength": null}), "`maxLength` must be a non-negative integer"),
        (json!({"minItems": 3, "maxItems": 2}), "invalid schema at (root): minItems 3 is greater than maxItems 2"),
        (json!({"minLength": 3, "maxLength": 2}), "minLength 3 is greater than maxLength 2"),
        (json!({"uniqueItems": "yes"}), "`uniqueItems` must be a boolean"),
        (json!({"enum": []}), "`enum` must be a non-empty array"),
        (json!({"enum": "a"}), "`enum` must be a non-empty array"),
        (json!({"minimum": "0"}), "`minimum` must be a number, got \"0\""),
        (json!({"exclusiveMaximum": true}), "the draft-4 boolean form is not supported"),
        (json!({"anyOf": []}), "`anyOf` must be a non-empty array of schemas"),
        (json!({"oneOf": {}}), "`oneOf` must be a non-empty array of schemas"),
        (json!({"allOf": [{}, {"nope": 1}]}), "invalid schema at /allOf/1/nope: unknown keyword `nope`"),
        (json!("string"), "a schema must be an object or a boolean, got string"),
        (json!(null), "a schema must be an object or a boolean, got null"),
    ]
}

#[test]
fn bad_schemas_do_not_compile() {
    let cases = bad_schema_cases();
    for (schema, expected) in cases {
        let error = Schema::compile(&schema).unwrap_err().to_string();
        assert!(error.contains(expected), "{schema}: {error}");
    }
    // Whole floats are counts.
    assert!(Schema::compile(&json!({"minItems": 2.0})).is_ok());
}

#[test]
fn nesting_is_bounded() {
    let mut deep = json!({"type": "string"});
    for _ in 0..MAX_SCHEMA_DEPTH {
        deep = json!({"items": deep});
    }
    assert!(Schema::compile(&deep).is_ok());
    let deeper = json!({"items": deep});
    let error = Schema::compile(&deeper).unwrap_err();
    assert!(error.message.contains("nest deeper"), "{error}");
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "[a-z~/é]{0,6}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z]{0,3}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Schemas built from the supported keywords with random values, so many compile.
fn any_schema() -> impl Strategy<Value = Value> {
    let keyword = prop_oneof![
        Just("type"),
        Just("properties"),
        Just("required"),
        Just("additionalProperties"),
        Just("items"),
        Just("minItems"),
        Just("maxItems"),
        Just("uniqueItems"),
        Just("enum"),
        Just("const"),
        Just("minLength"),
        Just("maxLength"),
        Just("minimum"),
        Just("maximum"),
        Just("exclusiveMinimum"),
        Just("exclusiveMaximum"),
        Just("anyOf"),
        Just("oneOf"),
        Just("allOf"),
    ];
    let type_name = prop_oneof![
        Just("null"),
        Just("boolean"),
        Just("integer"),
        Just("number"),
        Just("string"),
        Just("array"),
        Just("object"),
    ];
    let value = prop_oneof![
        type_name.prop_map(Value::from),
        (0u64..5).prop_map(Value::from),
        any_json(),
    ];
    let leaf = prop::collection::btree_map(keyword, value, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()));
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::btree_map("[a-c]", inner.clone(), 0..3).prop_map(|m| {
                json!({"type": "object", "properties": Value::Object(m.into_iter().collect())})
            }),
            inner
                .clone()
                .prop_map(|s| json!({"type": "array", "items": s})),
            prop::collection::vec(inner, 1..3).prop_map(|v| json!({"anyOf": v})),
        ]
    })
}

proptest! {
    #[test]
    fn compiling_and_validating_never_panic(schema in any_schema(), value in any_json()) {
        if let Ok(compiled) = Schema::compile(&schema) {
            let result = compiled.validate(&value);
            prop_assert_eq!(result.is_ok(), compiled.is_valid(&value));
            if let Err(violations) = result {
                prop_assert!(!violations.is_empty() && violations.len() <= MAX_VIOLATIONS);
            }
        }
    }

    #[test]
    fn arbitrary_json_as_a_schema_never_panics(schema in any_json(), value in any_json()) {
        if let Ok(compiled) = Schema::compile(&schema) {
            let _ = compiled.validate(&value);
        }
    }

    #[test]
    fn a_value_equals_itself(value in any_json()) {
        prop_assert!(json_equal(&value, &value));
        let schema = compile(json!({"const": value.clone(), "enum": [value.clone()]}));
        prop_assert!(schema.is_valid(&value));
    }
}
