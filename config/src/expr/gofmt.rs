//! Go's rendering rules, which Argo's output follows: `fmt.Sprintf("%v")` and
//! `encoding/json.Marshal`.

use expr::Value;

/// Split a finite non-zero float into shortest decimal digits and Go's exponent
/// (value = 0.d1d2... × 10^(exp+1), i.e. exp is the exponent of the first digit).
fn digits_exp(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    (mant.replace('.', ""), exp.parse().unwrap_or(0))
}

fn sci(f: f64, min_exp_digits: usize) -> String {
    let (d, exp) = digits_exp(f);
    let sign = if f < 0.0 { "-" } else { "" };
    let mant = if d.len() > 1 {
        format!("{}.{}", &d[..1], &d[1..])
    } else {
        d
    };
    let esign = if exp < 0 { '-' } else { '+' };
    format!(
        "{sign}{mant}e{esign}{:0width$}",
        exp.abs(),
        width = min_exp_digits
    )
}

/// `fmt.Sprintf("%v", f)` for a float64: `%g` with the shortest digits; Go (strconv `'g'`,
/// shortest) uses the exponent form when the decimal exponent is < -4 or >= 6.
pub(crate) fn go_float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let (_, exp) = digits_exp(f);
    if !(-4..6).contains(&exp) {
        sci(f, 2)
    } else {
        format!("{f}")
    }
}

/// `encoding/json` float formatting.
pub(crate) fn go_json_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let a = f.abs();
    if !(1e-6..1e21).contains(&a) {
        // Go: 'e' format, then e-07 -> e-7.
        let s = sci(f, 1);
        return s;
    }
    format!("{f}")
}

/// Go's `%v` of the value expr-go would have produced.
pub(crate) fn go_fmt_v(v: &Value) -> String {
    match v {
        Value::Nil => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Float(f) => go_float_v(*f),
        Value::String(s) => s.clone(),
        Value::Bytes(b) => {
            format!(
                "[{}]",
                b.iter().map(u8::to_string).collect::<Vec<_>>().join(" ")
            )
        }
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt_v).collect::<Vec<_>>().join(" ")),
        Value::Map(m) => {
            let mut kv: Vec<_> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = kv
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_fmt_v(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::KeyedMap(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_fmt_v(k), go_fmt_v(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
        Value::DateTime(d) => {
            let off = d.offset().local_minus_utc();
            let frac = d.format("%.f").to_string();
            let frac = frac.trim_end_matches('0');
            let frac = if frac == "." { "" } else { frac };
            let zone = if off == 0 {
                "UTC".to_string()
            } else {
                d.format("%z").to_string()
            };
            format!(
                "{}{} {} {}",
                d.format("%Y-%m-%d %H:%M:%S"),
                frac,
                d.format("%z"),
                zone
            )
        }
        Value::Duration(ns) => go_duration(*ns),
        other => other.to_string(),
    }
}

/// Go's `time.Duration.String()`.
pub(crate) fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let sign = if neg { "-" } else { "" };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", trim_frac(u as f64 / 1e3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", trim_frac(u as f64 / 1e6));
    }
    let h = u / 3_600_000_000_000;
    let m = (u / 60_000_000_000) % 60;
    let s = (u % 60_000_000_000) as f64 / 1e9;
    let mut out = sign.to_string();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{}s", trim_frac(s)));
    out
}

fn trim_frac(f: f64) -> String {
    let s = format!("{f:.9}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// `json.Marshal` as Go does it: map keys sorted, HTML characters escaped, Go float format.
pub(crate) fn go_json(v: &Value) -> Result<String, String> {
    let mut out = String::new();
    write_json(v, &mut out)?;
    Ok(out)
}

fn write_json(v: &Value, out: &mut String) -> Result<(), String> {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::Integer(i) => out.push_str(&i.to_string()),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!("json: unsupported value: {}", go_float_v(*f)));
            }
            out.push_str(&go_json_float(*f));
        }
        Value::String(s) => json_str(s, out),
        Value::Bytes(b) => {
            use base64::Engine;
            json_str(&base64::engine::general_purpose::STANDARD.encode(b), out)
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(x, out)?;
            }
            out.push(']');
        }
        Value::Map(m) => {
            let mut kv: Vec<_> = m.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, x)) in kv.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(k, out);
                out.push(':');
                write_json(x, out)?;
            }
            out.push('}');
        }
        Value::DateTime(d) => {
            json_str(&d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true), out)
        }
        Value::Duration(ns) => out.push_str(&ns.to_string()),
        other => return Err(format!("json: unsupported value: {other}")),
    }
    Ok(())
}

fn json_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// expr value -> serde_json value (used for jsonpath input and results).
pub(crate) fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Integer(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.clone().into(),
        Value::Array(a) => a.iter().map(to_json).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect(),
        other => go_fmt_v(other).into(),
    }
}

/// serde_json value -> expr value.
pub(crate) fn from_json(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => n
            .as_i64()
            .map(Value::Integer)
            .unwrap_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN))),
        serde_json::Value::String(s) => Value::String(s.clone()),
        serde_json::Value::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        serde_json::Value::Object(m) => {
            Value::Map(m.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(go_float_v(3.0), "3");
        assert_eq!(go_float_v(35.8), "35.8");
        assert_eq!(go_float_v(-0.5), "-0.5");
        assert_eq!(go_float_v(0.0001), "0.0001");
        assert_eq!(go_float_v(0.00001), "1e-05");
        assert_eq!(go_float_v(123456.0), "123456");
        assert_eq!(go_float_v(1e21), "1e+21");
        assert_eq!(go_float_v(1e6), "1e+06");
        assert_eq!(go_float_v(1234567.0), "1.234567e+06");
        assert_eq!(go_float_v(1.5e22), "1.5e+22");
        assert_eq!(go_json_float(5.0), "5");
        assert_eq!(go_json_float(1e21), "1e+21");
        assert_eq!(go_json_float(1e-7), "1e-7");
    }

    #[test]
    fn values_like_go() {
        let m: Value = [("b", Value::from(1)), ("a", Value::from("x"))]
            .into_iter()
            .collect();
        assert_eq!(go_fmt_v(&m), "map[a:x b:1]");
        assert_eq!(go_fmt_v(&Value::from(vec![1, 2])), "[1 2]");
        assert_eq!(go_fmt_v(&Value::Nil), "<nil>");
        assert_eq!(go_json(&m).unwrap(), r#"{"a":"x","b":1}"#);
        assert_eq!(
            go_json(&Value::from("<a&b>\n")).unwrap(),
            r#""\u003ca\u0026b\u003e\n""#
        );
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
    }
}
