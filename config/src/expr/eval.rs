//! `{{=...}}` evaluation: expr-lang with Argo's environment (`util/expr/env/env.go`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use expr::{Context, Environment, Value};

use super::gofmt::{from_json, go_fmt_v, go_json, to_json};
use super::scan::{self, DICT_FN, SPRIG_PREFIX};
use super::{ExprError, Unresolved, Vars};

/// Context key carrying the injected time to `now()` (not a valid expr identifier).
pub(crate) const NOW_KEY: &str = "__coxswain_now";

static ENV: LazyLock<Environment<'static>> = LazyLock::new(build_env);

fn build_env() -> Environment<'static> {
    let mut env = Environment::new();
    // Aliases Argo adds for backwards compatibility: asInt = int, asFloat = float.
    env.add_function("asInt", |c| c.env.eval_func(c.ctx, "int", c.args, None));
    env.add_function("asFloat", |c| c.env.eval_func(c.ctx, "float", c.args, None));
    // expr-go's string() is fmt.Sprintf("%v").
    env.add_function("string", |c| match c.args.as_slice() {
        [v] => Ok(Value::String(go_fmt_v(v))),
        _ => Err(format!("string() takes exactly one argument, got {}", c.args.len()).into()),
    });
    env.add_function("toJson", |c| match c.args.as_slice() {
        [v] => go_json(v).map(Value::String).map_err(Into::into),
        _ => Err(format!("toJson() takes exactly one argument, got {}", c.args.len()).into()),
    });
    env.add_function("jsonpath", |c| match c.args.as_slice() {
        [Value::String(json), Value::String(path)] => jsonpath(json, path).map_err(Into::into),
        _ => Err("jsonpath(json, path) takes two strings".to_string().into()),
    });
    env.add_function("now", |c| {
        if !c.args.is_empty() {
            return Err("now() takes no arguments".to_string().into());
        }
        now_value(c.ctx)
    });
    env.add_function(DICT_FN, |c| {
        let mut m = Vec::with_capacity(c.args.len() / 2);
        for pair in c.args.chunks(2) {
            let Value::String(k) = &pair[0] else {
                return Err(format!("map key must be a string, got {}", pair[0]).into());
            };
            m.push((k.clone(), pair.get(1).cloned().unwrap_or(Value::Nil)));
        }
        Ok(m.into_iter().collect())
    });
    super::sprig::register(&mut env);
    env
}

pub(crate) fn now_value(ctx: &dyn expr::ContextProvider) -> expr::Result<Value> {
    ctx.get(NOW_KEY).cloned().ok_or_else(|| {
        "now() is not available: no current time was provided"
            .to_string()
            .into()
    })
}

/// Argo's `jsonpath(json, path)`: parse the JSON text, query it; a path that selects a
/// single node (no wildcard, slice, filter, union or descent) gives that node's value,
/// any other path the list of matches.
fn jsonpath(json: &str, path: &str) -> Result<Value, String> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("jsonpath: invalid JSON: {e}"))?;
    let query = serde_json_path::JsonPath::parse(path)
        .map_err(|e| format!("jsonpath: invalid path '{path}': {e}"))?;
    let nodes = query.query(&doc).all();
    if is_singular_path(path) {
        match nodes.as_slice() {
            [one] => Ok(from_json(one)),
            _ => Err(format!("jsonpath: '{path}' matched nothing")),
        }
    } else {
        Ok(Value::Array(nodes.into_iter().map(from_json).collect()))
    }
}

fn is_singular_path(path: &str) -> bool {
    let mut quote = None;
    let b = path.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'\'' | b'"' => quote = Some(c),
                b'*' | b'?' | b':' | b',' => return false,
                b'.' if b.get(i + 1) == Some(&b'.') => return false,
                _ => {}
            },
        }
    }
    true
}

/// Argo's environment: the flat variables (all strings, as Argo's replace map), with
/// less-specific keys that have children removed, expanded on dots into nested maps.
fn build_context(vars: &Vars) -> Context {
    let flat: BTreeMap<String, Option<String>> = vars.flat().into_iter().collect();
    let keys: Vec<&String> = flat.keys().collect();
    let mut root: indexmap_like::Map = indexmap_like::Map::default();
    for (i, k) in keys.iter().enumerate() {
        // Sorted order: a parent `a` is immediately followed by its first child `a.x`.
        if keys
            .get(i + 1)
            .is_some_and(|n| n.starts_with(&format!("{k}.")))
        {
            continue;
        }
        let value = flat[*k].clone().map_or(Value::Nil, Value::String);
        root.insert_path(k, value);
    }
    let mut ctx = Context::default();
    for (k, v) in root.into_values() {
        ctx.insert(k, v);
    }
    if let Some(now) = vars.now() {
        ctx.insert(
            NOW_KEY,
            Value::DateTime(expr::DateTimeValue::fixed(now.fixed_offset())),
        );
    }
    ctx
}

mod indexmap_like {
    use expr::Value;

    /// A tree of nested maps built from dotted keys.
    #[derive(Default)]
    pub(super) struct Map(Vec<(String, Value)>);

    impl Map {
        pub(super) fn insert_path(&mut self, key: &str, value: Value) {
            let segs: Vec<&str> = key.split('.').collect();
            insert(&mut self.0, &segs, value);
        }
        pub(super) fn into_values(self) -> Vec<(String, Value)> {
            self.0
        }
    }

    fn insert(entries: &mut Vec<(String, Value)>, segs: &[&str], value: Value) {
        let (first, rest) = (segs[0], &segs[1..]);
        if rest.is_empty() {
            entries.push((first.to_string(), value));
            return;
        }
        let pos = entries.iter().position(|(k, _)| k == first);
        let idx = match pos {
            Some(i) => i,
            None => {
                entries.push((first.to_string(), Value::Map(Default::default())));
                entries.len() - 1
            }
        };
        if !matches!(entries[idx].1, Value::Map(_)) {
            entries[idx].1 = Value::Map(Default::default());
        }
        if let Value::Map(m) = &mut entries[idx].1 {
            let mut v: Vec<(String, Value)> = std::mem::take(m).into_iter().collect();
            insert(&mut v, rest, value);
            *m = v.into_iter().collect();
        }
    }
}

fn clean_message(msg: String) -> String {
    let msg = msg.replace(SPRIG_PREFIX, "sprig.");
    // pest errors are multi-line pictures; keep position and expectation.
    if let Some(pos) = msg
        .lines()
        .next()
        .and_then(|l| l.trim().strip_prefix("--> "))
    {
        let expected = msg
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("= "))
            .unwrap_or("syntax error");
        let (line, col) = pos.split_once(':').unwrap_or((pos, "?"));
        return format!("line {line}, column {col}: {expected}");
    }
    msg
}

/// Run `f`, turning a panic inside expr-lang (it has `unreachable!` paths) into an error.
fn guarded<T>(f: impl FnOnce() -> expr::Result<T>) -> Result<T, String> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| clean_message(e.to_string())),
        Err(p) => {
            let what = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("expression not supported by expr-lang: {what}"))
        }
    }
}

fn compile(expr_src: &str) -> Result<expr::Program, ExprError> {
    let src = scan::rewrite_maps(&scan::rewrite_sprig(expr_src));
    guarded(|| expr::compile(&src)).map_err(|message| ExprError::Syntax {
        expr: expr_src.to_string(),
        message,
    })
}

/// Check an expression's syntax without evaluating it.
pub fn check_expression(expr_src: &str) -> Result<(), ExprError> {
    compile(expr_src).map(|_| ())
}

fn run(expr_src: &str, vars: &Vars) -> Result<Value, ExprError> {
    let program = compile(expr_src)?;
    let ctx = build_context(vars);
    guarded(|| ENV.run(&program, &ctx)).map_err(|message| ExprError::Evaluation {
        expr: expr_src.to_string(),
        message,
    })
}

/// Evaluate the body of a `{{=...}}` tag and return its value as JSON (a nil result is
/// JSON null; times become RFC 3339 strings).
pub fn evaluate(expr_src: &str, vars: &Vars) -> Result<serde_json::Value, ExprError> {
    run(expr_src, vars).map(|v| match v {
        Value::DateTime(_) | Value::Duration(_) => go_fmt_v(&v).into(),
        v => to_json(&v),
    })
}

/// Whether every variable path the expression reads is defined (or a prefix of one).
fn all_paths_known(expr_src: &str, vars: &Vars) -> bool {
    let flat = vars.flat();
    scan::paths(expr_src).iter().all(|p| {
        let dotted = format!("{p}.");
        flat.iter()
            .any(|(k, _)| k == p || k.starts_with(&dotted) || p.starts_with(&format!("{k}.")))
    })
}

/// Render an expression tag for [`super::substitute`]: `Ok(None)` means "leave the tag".
pub(crate) fn render_expression(
    expr_src: &str,
    vars: &Vars,
    unresolved: Unresolved,
) -> Result<Option<String>, ExprError> {
    if unresolved == Unresolved::Leave && !all_paths_known(expr_src, vars) {
        return Ok(None);
    }
    match run(expr_src, vars) {
        Ok(Value::Nil) => match unresolved {
            Unresolved::Leave => Ok(None),
            Unresolved::Error => Err(ExprError::NilResult {
                expr: expr_src.to_string(),
            }),
        },
        Ok(v) => Ok(Some(go_fmt_v(&v))),
        Err(_) if unresolved == Unresolved::Leave => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::substitute;
    use serde_json::json;

    fn vars() -> Vars {
        let mut v = Vars::new();
        v.insert("inputs.parameters.foo", "3");
        v.insert("inputs.parameters.should-print", "true");
        v.insert("inputs.parameters.f", "2.5");
        v.insert("workflow.parameters.json", r#"[{"value": "true"}]"#);
        v.insert(
            "workflow.parameters.config",
            r#"{"a": "1", "b": 2, "c": {"d": true}, "employees": [{"name": "Baris", "age": 43}, {"name": "Mark", "age": 30}]}"#,
        );
        v.insert(
            "workflow.parameters.weather",
            r#"{"weekWeather": "eyJ0ZW1wcyI6IFszNCwgMjcsIDE1LCA1NywgNDZdfQo="}"#,
        );
        v.insert("workflow.creationTimestamp", "2024-03-05T10:11:12Z");
        v.insert("item", "1");
        v.set_now(
            chrono::DateTime::parse_from_rfc3339("2025-06-07T08:09:10Z")
                .unwrap()
                .to_utc(),
        );
        v
    }

    fn s(e: &str) -> String {
        substitute(&format!("{{{{={e}}}}}"), &vars(), Unresolved::Error).unwrap()
    }

    #[test]
    fn argo_example_expressions() {
        assert_eq!(s("asInt(inputs.parameters.foo) * 10"), "30");
        assert_eq!(s("toJson(filter([1, 3], {# > 1}))"), "[3]");
        assert_eq!(s("item"), "1");
        assert_eq!(s(r#" inputs.parameters["should-print"] == 'true'"#), "true");
        assert_eq!(s("inputs.parameters['should-print']"), "true");
        assert_eq!(
            s("jsonpath(workflow.parameters.json, '$[0].value') == 'true'"),
            "true"
        );
        assert_eq!(s("jsonpath(workflow.parameters.config, '$.a')"), "1");
        assert_eq!(s("jsonpath(workflow.parameters.config, '$.b')"), "2");
        assert_eq!(
            s("jsonpath(workflow.parameters.config, '$.c')"),
            "map[d:true]"
        );
        assert_eq!(
            s(r#"jsonpath(workflow.parameters.config, '$.employees[?(@.name=="Baris")].age')"#),
            "[43]"
        );
        assert_eq!(
            s("jsonpath(workflow.parameters.config, '$.employees[?(@.age>42 && @.age<44)].age')"),
            "[43]"
        );
        assert_eq!(
            s("jsonpath(workflow.parameters.config, '$.employees[0:1]')"),
            "[map[age:43 name:Baris]]"
        );
        assert_eq!(
            s("jsonpath(workflow.parameters.config, '$.employees[*].name')"),
            "[Baris Mark]"
        );
        assert_eq!(s("sprig.date('2006', workflow.creationTimestamp)"), "2024");
        let snippet = r#"
                map([
                    jsonpath(sprig.b64dec(jsonpath(workflow.parameters.weather, '$.weekWeather')), '$.temps')
                  ], {
                    toJson({
                      avg: sprig.add(#[0], #[1], #[2], #[3], #[4]) / 5,
                      min: sprig.min(#[0], #[1], #[2], #[3], #[4]),
                      max: sprig.max(#[0], #[1], #[2], #[3], #[4])
                    })
                })[0]
              "#;
        let week = s(snippet);
        assert_eq!(week, r#"{"avg":35.8,"max":57,"min":15}"#);
        let mut v = vars();
        v.insert("inputs.parameters.week-temps", week);
        let r = |e: &str| substitute(e, &v, Unresolved::Error).unwrap();
        assert_eq!(
            r("{{=jsonpath(inputs.parameters['week-temps'], '$.avg')}}"),
            "35.8"
        );
        assert_eq!(
            r("{{=jsonpath(inputs.parameters['week-temps'], '$.min')}}"),
            "15"
        );
    }

    #[test]
    fn rendering() {
        assert_eq!(s("3.0"), "3");
        assert_eq!(s("7 / 2"), "3.5");
        assert_eq!(s("6 / 2"), "3");
        assert_eq!(s("[1, 'a', true]"), "[1 a true]");
        assert_eq!(s("{b: 1, a: 'x'} "), "map[a:x b:1]");
        // Like fasttemplate, a tag ends at the first `}}`.
        let e = substitute("{{={b: 1}}}", &vars(), Unresolved::Error).unwrap_err();
        assert!(
            matches!(&e, ExprError::Syntax { expr, message } if expr == "{b: 1" && message.starts_with("line 1, column 6: expected")),
            "{e}"
        );
        assert_eq!(s("1000000.0"), "1e+06");
        assert_eq!(s("asFloat(inputs.parameters.f) * 2"), "5");
        assert_eq!(s("string(1.5) + 'x'"), "1.5x");
        assert_eq!(s("toJson('a\"b')"), r#""a\"b""#);
        assert_eq!(s("toJson({k: [1.0, nil]})"), r#"{"k":[1,null]}"#);
    }

    #[test]
    fn builtins() {
        assert_eq!(s("len([1, 2, 3])"), "3");
        assert_eq!(s("upper('ab') + lower('CD') + trim('  x ')"), "ABcdx");
        assert_eq!(s("join(split('a,b,c', ','), '-')"), "a-b-c");
        assert_eq!(s("replace('aXa', 'X', 'y')"), "aya");
        assert_eq!(s("'abc' contains 'b' && 'abc' startsWith 'a'"), "true");
        assert_eq!(s("toJson(map([1, 2], # * 2))"), "[2,4]");
        assert_eq!(s("nil ?? 'fallback'"), "fallback");
        assert_eq!(s("inputs.parameters.nope ?? 'dflt'"), "dflt");
        assert_eq!(s("inputs.parameters.foo == '3' ? 'yes' : 'no'"), "yes");
        assert_eq!(s("now().Year()"), "2025");
    }

    #[test]
    fn evaluate_values() {
        let v = vars();
        assert_eq!(evaluate("asInt('4') + 1", &v).unwrap(), json!(5));
        assert_eq!(
            evaluate("{a: [1, 'x']}", &v).unwrap(),
            json!({"a": [1, "x"]})
        );
        assert_eq!(evaluate("nil", &v).unwrap(), json!(null));
        assert_eq!(evaluate("inputs.parameters.foo", &v).unwrap(), json!("3"));
        assert_eq!(
            evaluate("now()", &v).unwrap(),
            json!("2025-06-07 08:09:10 +0000 UTC")
        );
        let e = evaluate("now()", &Vars::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to evaluate expression 'now()': now() is not available: no current time was provided"
        );
    }

    #[test]
    fn errors() {
        let v = vars();
        let e = evaluate("1 +", &v).unwrap_err();
        assert!(
            matches!(&e, ExprError::Syntax { expr, message } if expr == "1 +" && message.starts_with("line 1, column 4: ")),
            "{e}"
        );
        let e = evaluate("nope + 1", &v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to evaluate expression 'nope + 1': unknown variable: nope"
        );
        let e = evaluate("sprig.nosuch(1)", &v).unwrap_err();
        assert_eq!(
            e.to_string(),
            "failed to evaluate expression 'sprig.nosuch(1)': Unknown function: sprig.nosuch"
        );
        let e = evaluate("jsonpath('{}', '$.x')", &v).unwrap_err();
        assert!(e.to_string().contains("matched nothing"), "{e}");
        let e = substitute("{{=nil}}", &v, Unresolved::Error).unwrap_err();
        assert_eq!(e, ExprError::NilResult { expr: "nil".into() });
        assert_eq!(
            substitute("{{=nil}}", &v, Unresolved::Leave).unwrap(),
            "{{=nil}}"
        );
        assert!(check_expression("a.b == 'x' && sprig.trim(c) != ''").is_ok());
        assert!(check_expression("a ==").is_err());
    }

    #[test]
    fn conflicts_and_nesting() {
        let mut v = Vars::new();
        v.insert("a", "parent");
        v.insert("a.b", "child");
        v.insert("x.y.z", "deep");
        assert_eq!(evaluate("a.b + x.y.z", &v).unwrap(), json!("childdeep"));
    }
}
